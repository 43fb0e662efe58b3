"""Command lines that wrap a job in its layers. Pure functions of their arguments (what a job
will see is planned in view.py), unit-tested without starting anything.

A job's command is built from the outside in:

    sh (enters the job's cgroup) -> bwrap or unshare (namespaces, the filesystem view)
        -> setpriv (the job's own uid, no capabilities) -> python -m grader.child ...
"""

from __future__ import annotations

import os
import site
import sys
from collections.abc import Iterable
from pathlib import Path

import grader
from grader.sandbox import view


def python_paths() -> list[str]:
    """The interpreter, its libraries and this package: all a job needs beyond /usr.

    Not the rest of sys.path: it holds the working directory, which may be /tmp or the repo.
    """
    package = Path(grader.__file__).resolve().parent
    candidates = {
        sys.prefix,
        sys.base_prefix,
        str(package),
        str(Path(sys.executable).resolve().parent),
        *site.getsitepackages(),
    }
    return outermost(p for p in candidates if not os.path.realpath(p).startswith("/usr/"))


def outermost(paths: Iterable[str]) -> list[str]:
    """Real paths with those inside another one dropped (a bind of the parent covers them)."""
    real = sorted({os.path.realpath(p) for p in paths})
    return [p for p in real if not any(p != q and p.startswith(q + os.sep) for q in real)]


def bwrap(program: str, *, root: bool, env: dict[str, str], mounts: list[view.Mount]) -> list[str]:
    """bubblewrap: no network, its own pid/ipc/uts, and the view `mounts` describe."""
    argv = [
        program,
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        *view.bwrap_options(mounts),
        "--chdir",
        "/tmp",
    ]
    if not root:
        argv.append("--unshare-user")
    for key, value in env.items():
        argv += ["--setenv", key, value]
    if root:
        # bwrap drops every capability by default; keep just what setpriv needs to switch uid.
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    return argv


def unshare(program: str) -> list[str]:
    """The fallback without bubblewrap (root only): new namespaces, in which private_view
    builds the job's view (it mounts the new /proc itself)."""
    return [program, "--net", "--pid", "--ipc", "--uts", "--mount", "--fork", "--kill-child"]


def private_view(python: str, root: str, mounts: str) -> list[str]:
    """Inside unshare's namespaces: the job's view (`mounts`, as JSON) built on root."""
    return [python, "-s", "-B", "-P", "-m", "grader.sandbox.private_view", root, mounts, "--"]


def setpriv(program: str, uid: int) -> list[str]:
    """Become uid (and gid uid), no groups, no capabilities, no way to gain privileges."""
    return [
        program,
        "--reuid",
        str(uid),
        "--regid",
        str(uid),
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def enter_cgroup(procs_files: list[Path]) -> list[str]:
    """A shell that moves itself into the job's cgroup, then becomes the job: no process of the
    job ever runs outside it."""
    script = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
    return ["/bin/sh", "-c", script, "sh", *map(str, procs_files), "--"]
