"""Landlock: the kernel's unprivileged access control, applied by the child to itself.

A small ctypes binding of the three system calls (Linux 5.13+), because the one Python package
for it is a development release without the network (ABI 4) and scope (ABI 6) rights this needs.
After `restrict` the process, and everything it starts, may only:

- read (and execute) files under the `read` paths, and write, create and remove under `write`;
- use the `devices` (character devices such as /dev/null) for reading, writing and ioctl;
- neither bind nor connect TCP sockets (ABI 4);
- neither reach abstract unix sockets nor signal processes outside its domain (ABI 6).

Landlock also forbids ptrace, and so /proc/<pid>/mem, of any process outside the domain. Rights
the kernel's ABI does not know are left out, and `Applied` says what was enforced, so the grader
can compare it with what it promised.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

from grader.protocol import LandlockRules

CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446  # the same on every architecture
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

# LANDLOCK_ACCESS_FS_*: the rights each ABI version added.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

READ = EXECUTE | READ_FILE | READ_DIR
WRITE = READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM
WRITE |= MAKE_SOCK | MAKE_FIFO | REFER | TRUNCATE
DEVICE = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV


class LandlockError(Exception):
    """Landlock could not be applied as asked."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


@dataclass(frozen=True)
class Applied:
    """What was enforced: the kernel's ABI and the rules, in the protocol's words."""

    abi: int
    rules: tuple[str, ...]


def abi() -> int:
    """The kernel's Landlock ABI version; 0 where it has none (or it is disabled)."""
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(CREATE_RULESET, None, ctypes.c_size_t(0), CREATE_RULESET_VERSION)
    return max(int(version), 0)


def restrict(rules: LandlockRules) -> Applied:
    """Confine this process (and its future children) to `rules`, for good."""
    version = abi()
    if version < rules.min_abi:
        raise LandlockError(f"the kernel offers Landlock ABI {version}, not {rules.min_abi}")
    handled = _fs_rights(version)
    libc = ctypes.CDLL(None, use_errno=True)
    attr = _RulesetAttr(handled, _net_rights(version), _scopes(version))
    size = ctypes.sizeof(_RulesetAttr) if version >= 6 else 16 if version >= 4 else 8
    ruleset = libc.syscall(CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    _check(ruleset, "landlock_create_ruleset")
    try:
        for paths, rights in ((rules.read, READ), (rules.write, WRITE), (rules.devices, DEVICE)):
            for path in paths:
                _allow(libc, ruleset, path, rights & handled)
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(libc.syscall(RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return Applied(version, rules.describe(version))


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise LandlockError(f"cannot open {path} for a rule ({exc.strerror})") from None
    try:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            rights &= ~(READ_DIR | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG
                        | MAKE_SOCK | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM | REFER)  # fmt: skip
        beneath = _PathBeneathAttr(rights, fd)
        _check(libc.syscall(ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(beneath), 0),
               f"landlock_add_rule {path}")  # fmt: skip
    finally:
        os.close(fd)


def _fs_rights(version: int) -> int:
    return FS_BY_ABI[max(v for v in FS_BY_ABI if v <= version)]


def _net_rights(version: int) -> int:
    return NET_BIND_TCP | NET_CONNECT_TCP if version >= 4 else 0


def _scopes(version: int) -> int:
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if version >= 6 else 0


def _check(result: int, what: str) -> None:
    if result < 0:
        error = ctypes.get_errno()
        raise LandlockError(f"{what}: {os.strerror(error)}")
