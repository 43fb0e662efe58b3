"""Inside the sandboxed child, before student code is imported: rlimits and a seccomp filter.

Limits arrive through the environment the sandbox set; lowering both soft and hard limits
means the student's code cannot raise them again.
"""

from __future__ import annotations

import errno
import os


def seccomp_available() -> bool:
    try:
        import pyseccomp  # noqa: F401
    except (ImportError, OSError, RuntimeError):
        return False
    return True


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


def confine(identity: bool) -> list[str]:
    """Apply rlimits and the seccomp filter to the current process; return what was applied."""
    import resource

    env = os.environ
    limits = {
        resource.RLIMIT_DATA: int(env.get("GRADER_MEMORY_BYTES", 4 << 30)),
        resource.RLIMIT_CPU: int(env.get("GRADER_CPU_SECONDS", 1200)),
        resource.RLIMIT_FSIZE: int(env.get("GRADER_MAX_FILE_BYTES", 64 << 20)),
        resource.RLIMIT_NOFILE: int(env.get("GRADER_MAX_OPEN_FILES", 256)),
        resource.RLIMIT_CORE: 0,
    }
    if identity:
        # RLIMIT_NPROC counts every process of the uid, so it is only meaningful per job uid.
        limits[resource.RLIMIT_NPROC] = int(env.get("GRADER_MAX_PROCESSES", 256))
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))
    applied = ["rlimits"]
    if seccomp_available():
        _load_seccomp()
        applied.append("seccomp")
    return applied


def _load_seccomp() -> None:
    import pyseccomp as sc

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
    rules.load()
