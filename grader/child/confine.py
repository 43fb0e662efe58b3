"""Inside the child, before student code is imported: rlimits, Landlock, the seccomp filter,
and an attestation of what the kernel says this process really runs under.

Lowering both soft and hard limits means the student's code cannot raise them again. A layer the
config asks for is applied or the child stops: it never runs student code without it.
"""

from __future__ import annotations

import ctypes.util
import errno
import os
import resource
from types import ModuleType

from grader.child import landlock
from grader.protocol import NAMESPACES, RLIMITS, Attestation, Confinement, rlimit_pair

DENIED_SYSCALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "add_key",
    "request_key",
    "keyctl",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "iopl",
    "ioperm",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fanotify_init",
)
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
NAMESPACE_FLAGS = (
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
    0x00000080,
)
PR_SET_DUMPABLE = 4


class ConfinementError(Exception):
    """A layer the sandbox promised could not be applied; no student code may run."""

    def __init__(self, layer: str, problem: str) -> None:
        super().__init__(f"{layer}: {problem}")
        self.layer, self.problem = layer, problem


def confine(confinement: Confinement) -> landlock.Applied | None:
    """Apply every layer asked for; what Landlock enforced, if it was asked for."""
    # Another job of the same uid may not open this one's /proc/<pid>/mem.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    for name, value in confinement.rlimits.items():
        try:
            resource.setrlimit(getattr(resource, name), rlimit_pair(name, value))
        except (ValueError, OSError, AttributeError) as exc:
            raise ConfinementError("limits", f"cannot set {name} to {value} ({exc})") from None
    applied = None
    if confinement.landlock is not None:
        try:
            applied = landlock.restrict(confinement.landlock)
        except landlock.LandlockError as exc:
            raise ConfinementError("landlock", str(exc)) from None
    if confinement.seccomp_library is not None:
        _load_seccomp(confinement.seccomp_library)
    return applied


def attest(
    applied: landlock.Applied | None = None, failed_layer: str = "", error: str = ""
) -> Attestation:
    """This process as the kernel sees it, after confine()."""
    status = _proc_status()
    return Attestation(
        seccomp=int(status.get("Seccomp", "0")),
        uid=os.getuid(),
        gid=os.getgid(),
        groups=tuple(sorted(os.getgroups())),
        cap_effective=int(status.get("CapEff", "ff"), 16),
        cap_permitted=int(status.get("CapPrm", "ff"), 16),
        cap_bounding=int(status.get("CapBnd", "ff"), 16),
        no_new_privs=int(status.get("NoNewPrivs", "0")),
        rlimits={name: resource.getrlimit(getattr(resource, name)) for name in RLIMITS},
        namespaces={name: _namespace(name) for name in NAMESPACES},
        landlock_abi=applied.abi if applied else 0,
        landlock_rules=applied.rules if applied else (),
        landlock_enforced=_refused("/"),
        failed_layer=failed_layer,
        error=error,
    )


def _refused(folder: str) -> bool:
    """Whether listing folder is refused: no rule grants `/`, so under Landlock it is."""
    try:
        os.close(os.open(folder, os.O_RDONLY | os.O_DIRECTORY))
    except PermissionError:
        return True
    except OSError:
        pass  # refused for another reason: not Landlock's doing
    return False


def _proc_status() -> dict[str, str]:
    fields = {}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
    except OSError:
        pass  # no /proc: every field reads as "not applied", so nothing promised is believed
    return fields


def _namespace(name: str) -> str:
    try:
        return os.readlink(f"/proc/self/ns/{name}")
    except OSError:
        return ""


def _import_pyseccomp(library: str) -> ModuleType:
    """pyseccomp finds libseccomp with ctypes.util.find_library, which asks ldconfig, and a
    job's view need not let ldconfig read the loader cache. The grader found the library file;
    load exactly that one."""
    real = ctypes.util.find_library
    known = {"seccomp": library, "c": "libc.so.6"}
    ctypes.util.find_library = lambda name: known.get(name) or real(name)
    try:
        import pyseccomp
    except (ImportError, OSError, RuntimeError) as exc:
        raise ConfinementError("seccomp", f"cannot load {library} ({exc})") from None
    finally:
        ctypes.util.find_library = real
    return pyseccomp


def _load_seccomp(library: str) -> None:
    sc = _import_pyseccomp(library)
    rules = sc.SyscallFilter(defaction=sc.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(sc.ERRNO(errno.EPERM), name)
        except (OSError, RuntimeError, ValueError):
            continue  # a syscall this architecture lacks
    # Only unix sockets: no loopback, no DNS, no outside network, even if a namespace leaked.
    rules.add_rule(sc.ERRNO(errno.EACCES), "socket", sc.Arg(0, sc.NE, 1))
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    # clone3 takes its flags through memory, which seccomp cannot read; glibc falls back to clone.
    rules.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    try:
        rules.load()
    except OSError as exc:
        raise ConfinementError("seccomp", f"the kernel refused the filter ({exc})") from None
