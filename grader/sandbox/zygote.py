"""A warm process: `python -m grader.sandbox.zygote SOCKET_FD GRADER_PID [--preload]`.

It imports torch and the child's code once, then forks one fresh child per job phase, so no job
pays for those imports again. It holds no labels and no grader state (it is started afresh, not
forked from the grader) and never runs student code itself: only its forked children do, each
after every layer is applied to it alone:

    join the job's cgroup -> new mount/pid/ipc/net/uts/cgroup namespaces -> (fork: pid 1 of the
    new pid namespace) -> the job's view on a fresh root -> its own uid, no capabilities,
    no_new_privs -> a clean environment -> grader.child.job.main: rlimits, seccomp, attestation

Each job starts from the zygote's pristine memory: nothing one job did (files, processes,
module state, RNG state, thread settings) can reach the next. The grader sends one request at a
time over the socket (JSON plus the log, attestation and go fds) and gets back the job's pid,
then its exit code. If the grader goes away, the zygote kills its job and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import socket
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from grader import protocol
from grader.sandbox import pid1, view

# Imported before the first fork; the child's own code is imported by name, as `python -m
# grader.child` would, so the grader's side never imports it.
PRELOAD = ("numpy", "torch", "safetensors.torch", "grader.child.job", "grader.child.training",
           "grader.child.contract")  # fmt: skip
CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS = 0x00020000, 0x02000000, 0x04000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x08000000, 0x20000000, 0x40000000
NAMESPACE_FLAGS = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID
NAMESPACE_FLAGS |= CLONE_NEWNET
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
PR_SET_CHILD_SUBREAPER = 36
MESSAGE_BYTES = 1 << 20
FAILED_SETUP = 71  # exit code of a forked child that could not make its sandbox


@dataclass(frozen=True)
class Request:
    """One job phase to fork. fds travel beside it: the log, the attestation's and the go's."""

    phase: str
    in_dir: str
    out_dir: str
    env: dict[str, str]
    cgroup_procs: list[str] = field(default_factory=list)
    uid: int | None = None
    mounts: list[dict[str, Any]] | None = None  # the view; None: no namespaces
    root: str = ""  # an empty folder to mount the view's root on
    cwd: str = "/tmp"  # the job's working folder: its temp folder

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()


def main(argv: list[str]) -> int:
    channel = socket.socket(fileno=int(argv[0]))
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the grader
    # Jobs it forks may share its uid (no uid per job): none may open its /proc/<pid>/mem and
    # change what later jobs inherit.
    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    # What a job leaves running (a daemon that forked twice) is reparented here, to be ended:
    # a job without a pid namespace of its own has nothing else to end it.
    _libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if os.getppid() != int(argv[1]):
        return 1  # the grader is gone already
    if "--preload" in argv:
        _preload()
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:  # forking a process with other threads could copy a lock mid-use
        _send(channel, {"error": f"the warm process has {threads} threads after its imports"})
        return 1
    wakeup_r, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wakeup_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _send(channel, {"ready": os.getpid()})
    while True:
        message, fds, _, _ = socket.recv_fds(channel, MESSAGE_BYTES, 3)
        if not message:
            return 0  # the grader closed the channel
        request = Request(**json.loads(message))
        pid = os.fork()
        if pid == 0:
            _child(request, fds)
        for fd in fds:
            os.close(fd)
        _send(channel, {"pid": pid})
        if not _wait(pid, channel, wakeup_r):
            return 0


def _preload() -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    torch = sys.modules["torch"]
    # Its first call imports some 900 modules (two seconds) that every job needs; the flag
    # itself goes back to the default, as a fresh process has it.
    torch.use_deterministic_algorithms(True)
    torch.use_deterministic_algorithms(False)


def _wait(pid: int, channel: socket.socket, wakeup: int) -> bool:
    """Report the job's exit code; False if the grader went away meanwhile (job killed)."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _end_orphans()
            _send(channel, {"exit": os.waitstatus_to_exitcode(status)})
            return True
        ready, _, _ = select.select([channel.fileno(), wakeup], [], [])
        if wakeup in ready:
            while _drain(wakeup):
                pass
        if channel.fileno() in ready and not channel.recv(1, socket.MSG_PEEK):
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            _end_orphans()
            return False


def _end_orphans() -> None:
    """Kill and reap every child left: between jobs this process has none of its own."""
    while orphans := _children():
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def _children() -> list[int]:
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue  # gone meanwhile
        if int(stat.rpartition(")")[2].split()[1]) == me:  # the fields after the name: ppid
            found.append(int(entry))
    return found


def _drain(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def _child(request: Request, fds: list[int]) -> None:
    """The forked job: never returns."""
    code = FAILED_SETUP
    try:
        log, attest, go = fds
        _reset(log, keep=(attest, go))
        phase = protocol.Phase(request.phase)
        code = _confined(request, protocol.child_args(phase, request.in_dir, request.out_dir,
                                                     attest, go))  # fmt: skip
    except BaseException as exc:  # the layers could not be applied: say why, run nothing
        os.write(2, f"warm job setup failed: {type(exc).__name__}: {exc}\n".encode())
    finally:
        os._exit(code)


def _reset(log: int, keep: tuple[int, ...]) -> None:
    """A clean process: its own session, signals as new, only stdio and `keep` open."""
    os.setsid()
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the zygote
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    for fd in map(int, os.listdir("/proc/self/fd")):
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):  # the listing's own fd, already gone
                os.close(fd)


def _confined(request: Request, args: list[str]) -> int:
    for procs in request.cgroup_procs:
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
    if request.mounts is not None:
        _check(_libc().unshare(NAMESPACE_FLAGS), "unshare")
        pid = os.fork()  # the new pid namespace begins with this process's first child
        if pid:
            return _relay(pid)
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        view.build(view.from_data(request.mounts), request.root)
        pid = os.fork()  # pid 1 stays a plain init, as under bubblewrap: signals reach the job
        if pid:
            pid1.become_init(pid)
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if request.uid is not None:
        _become(request.uid)
    os.environ.clear()
    os.environ.update(request.env)
    os.chdir(request.cwd)
    sys.argv = ["-m", *args]  # as `python -m grader.child ARGS` has it
    job = importlib.import_module("grader.child.job")
    code: int = job.main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def _relay(pid: int) -> int:
    """Outside the new pid namespace: wait for its first process, exit as it did."""
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _become(uid: int) -> None:
    """The job's own uid and gid, no groups, no capabilities, no way to gain any."""
    libc = _libc()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        last = int(handle.read())
    for capability in range(last + 1):
        _check(libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), "drop a capability")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "set no_new_privs")
    os.setresuid(uid, uid, uid)  # from root to a uid: the kernel clears the capabilities


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    channel.send(json.dumps(message).encode())  # a SOCK_SEQPACKET channel: one message each


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
