"""The layers a job was promised, held against what its child attested from the kernel.

A difference means the job must not run; the grader never takes a layer on trust.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.protocol import NAMESPACES, PROTOCOL_VERSION, Attestation, rlimit_pair
from grader.sandbox.probe import CHILD, START, LayerName

SECCOMP_FILTER = 2  # /proc/self/status "Seccomp" of a process under a BPF filter


@dataclass(frozen=True)
class Promise:
    """What one job is to run under. A layer left out (None or False) is not checked."""

    rlimits: dict[str, int]
    seccomp: bool
    uid: int | None  # identity: this uid and gid, no groups, no capabilities, no_new_privs
    separate_from: (
        dict[str, str] | None
    )  # namespaces: the grader's own, which the job must not share
    landlock: tuple[str, ...] | None = None  # the rules in words (LandlockRules.describe)


def breaches(attestation: Attestation | None, promise: Promise) -> list[tuple[str, str]]:
    """(layer, what is wrong) for every promised layer the job does not have."""
    if attestation is None:
        return [(START, "the job ended before saying what it runs under")]
    if attestation.protocol != PROTOCOL_VERSION:
        return [(CHILD, f"it speaks protocol {attestation.protocol}, not {PROTOCOL_VERSION}")]
    if attestation.error:
        return [(attestation.failed_layer, attestation.error)]
    found: list[tuple[str, str]] = [
        (LayerName.LIMITS, p) for p in _limits(attestation, promise.rlimits)
    ]
    if promise.seccomp and attestation.seccomp != SECCOMP_FILTER:
        found.append((LayerName.SECCOMP, f"Seccomp is {attestation.seccomp}, not {SECCOMP_FILTER}"))
    if promise.uid is not None:
        found += [(LayerName.IDENTITY, p) for p in _identity(attestation, promise.uid)]
    if promise.landlock is not None:
        found += [(LayerName.LANDLOCK, p) for p in _landlock(attestation, promise.landlock)]
    if promise.separate_from is not None:
        shared = [
            name
            for name in NAMESPACES
            if not attestation.namespaces.get(name)
            or attestation.namespaces[name] == promise.separate_from.get(name)
        ]
        if shared:
            found.append((LayerName.NAMESPACES, "shares the grader's " + ", ".join(shared)))
    return found


def _limits(attestation: Attestation, rlimits: dict[str, int]) -> list[str]:
    return [
        f"{name} is {attestation.rlimits.get(name)}, not {rlimit_pair(name, value)}"
        for name, value in rlimits.items()
        if attestation.rlimits.get(name) != rlimit_pair(name, value)
    ]


def _identity(attestation: Attestation, uid: int) -> list[str]:
    a = attestation
    problems = []
    if (a.uid, a.gid, a.groups) != (uid, uid, ()):
        problems.append(f"runs as uid {a.uid} gid {a.gid} groups {list(a.groups)}, not {uid}")
    if a.cap_effective or a.cap_permitted or a.cap_bounding:
        problems.append(
            f"holds capabilities (effective {a.cap_effective:x}, permitted "
            f"{a.cap_permitted:x}, bounding {a.cap_bounding:x})"
        )
    if a.no_new_privs != 1:
        problems.append("can gain privileges (NoNewPrivs is 0)")
    return problems


def _landlock(attestation: Attestation, rules: tuple[str, ...]) -> list[str]:
    a = attestation
    if not a.landlock_abi:
        return ["not applied"]
    problems = []
    if a.landlock_rules != rules:
        missing = [rule for rule in rules if rule not in a.landlock_rules]
        extra = [rule for rule in a.landlock_rules if rule not in rules]
        problems.append(f"applied other rules (missing {missing}, extra {extra})")
    if not a.landlock_enforced:
        problems.append("the job could still list /")
    return problems
