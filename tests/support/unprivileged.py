"""Run a command as an unprivileged user who cannot make user namespaces, as in a container
whose runtime's default seccomp profile forbids them (or on a node with
user.max_user_namespaces=0): the weakest machine the grader must still hold on.

    python unprivileged.py UID -- COMMAND...   (as root)

The filter is the kernel's, not a flag the grader reads: bubblewrap, unshare and the grader's
own forked namespaces all get EPERM from it, exactly as they would there.
"""

from __future__ import annotations

import errno
import os
import sys

import pyseccomp as sc

CLONE_NEWUSER = 0x10000000


def forbid_user_namespaces() -> None:
    rules = sc.SyscallFilter(defaction=sc.ALLOW)
    for call in ("unshare", "clone"):
        rules.add_rule(
            sc.ERRNO(errno.EPERM), call, sc.Arg(0, sc.MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)
        )
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # flags in memory: glibc falls back to clone
    rules.load()


def main(argv: list[str]) -> None:
    uid, command = int(argv[0]), argv[argv.index("--") + 1 :]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    forbid_user_namespaces()  # after the switch: no_new_privs, as any unprivileged process
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
