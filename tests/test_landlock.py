"""Landlock, applied by a process to itself: what a job may and may not reach afterwards.

Each check runs in a fresh process (Landlock cannot be undone), with no sandbox around it, as a
job of the weakest configuration would: the grader's own uid, no namespaces."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.paths import REPO

from grader.protocol import Attestation, LandlockRules
from grader.sandbox.probe import landlock_abi
from grader.sandbox.verify import Promise, breaches

pytestmark = pytest.mark.skipif(landlock_abi() == 0, reason="this kernel offers no Landlock")

RESTRICTED = textwrap.dedent(
    """
    import json, os, signal, socket, sys
    from grader.child import landlock
    from grader.protocol import LandlockRules

    rules = LandlockRules.from_data(json.loads(sys.argv[1]))
    applied = landlock.restrict(rules)
    out = {"abi": applied.abi, "rules": list(applied.rules)}

    def attempt(name, call):
        try:
            call()
            out[name] = "ok"
        except OSError as exc:
            out[name] = exc.errno

    inside, outside = sys.argv[2], sys.argv[3]
    attempt("write_inside", lambda: open(os.path.join(inside, "w"), "w").close())
    attempt("read_outside", lambda: open(os.path.join(outside, "secret")).read())
    attempt("write_outside", lambda: open(os.path.join(outside, "new"), "w").close())
    attempt("list_root", lambda: os.listdir("/"))
    attempt("parent_mem", lambda: open(f"/proc/{os.getppid()}/mem", "rb").close())
    attempt("tcp_connect", lambda: socket.create_connection(("127.0.0.1", int(sys.argv[4])), 2))
    attempt("abstract_unix", lambda: socket.socket(socket.AF_UNIX).connect("\\0" + sys.argv[5]))
    attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
    print(json.dumps(out))
    """
)


def _python_paths() -> list[str]:
    from grader.sandbox.argv import python_paths

    return python_paths()


def test_a_landlocked_process_reaches_only_what_its_rules_name(tmp_path: Path) -> None:
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("labels")
    rules = LandlockRules(
        read=("/usr", "/proc", str(REPO / "grader"), *_python_paths()),
        write=(str(inside),),
        devices=("/dev/null",),
    )
    name = f"grader-test-{os.getpid()}"
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket(socket.AF_UNIX) as unix:
        unix.bind("\0" + name)
        unix.listen()
        done = subprocess.run(
            [sys.executable, "-c", RESTRICTED, json.dumps(dataclasses.asdict(rules)), str(inside),
             str(outside), str(server.getsockname()[1]), name],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    abi = landlock_abi()
    assert out.pop("abi") == abi
    assert tuple(out.pop("rules")) == rules.describe(abi)
    denied = {"read_outside", "write_outside", "list_root", "parent_mem"}
    denied |= {"tcp_connect"} if abi >= 4 else set()
    denied |= {"abstract_unix", "signal_parent"} if abi >= 6 else set()
    assert out["write_inside"] == "ok"
    for attempt in denied:
        assert out[attempt] in (13, 1), (attempt, out[attempt])  # EACCES or EPERM
    assert not (outside / "new").exists()


def test_rules_describe_what_the_abi_enforces() -> None:
    rules = LandlockRules(read=("/usr",), write=("/job/out",), devices=("/dev/null",))
    assert rules.describe(1) == ("read /usr", "write /job/out", "device /dev/null")
    assert rules.describe(4)[-1] == "tcp: no bind, no connect"
    assert rules.describe(6)[-2:] == (
        "tcp: no bind, no connect",
        "scoped: abstract unix sockets, signals",
    )
    assert LandlockRules.from_data(json.loads(json.dumps(dataclasses.asdict(rules)))) == rules


ATTESTED = Attestation(
    seccomp=0, uid=0, gid=0, groups=(), cap_effective=0, cap_permitted=0, cap_bounding=0,
    no_new_privs=1, rlimits={}, namespaces={}, landlock_abi=7,
    landlock_rules=("read /usr", "write /job/out"), landlock_enforced=True,
)  # fmt: skip
PROMISE = Promise(
    rlimits={}, seccomp=False, uid=None, separate_from=None,
    landlock=("read /usr", "write /job/out"),
)  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"landlock_abi": 0, "landlock_rules": ()}, [("landlock", "not applied")]),
        ({"landlock_rules": ("read /usr", "write /")},
         [("landlock", "applied other rules (missing ['write /job/out'], extra ['write /'])")]),
        ({"landlock_enforced": False}, [("landlock", "the job could still list /")]),
    ],
)  # fmt: skip
def test_the_grader_holds_landlock_to_its_promise(
    changes: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert breaches(dataclasses.replace(ATTESTED, **changes), PROMISE) == expected  # type: ignore[arg-type]


def test_the_attestation_round_trips_landlock() -> None:
    assert Attestation.from_line(ATTESTED.to_line()) == ATTESTED


def test_grader_sandbox_names_the_abi_and_the_rules() -> None:
    from click.testing import CliRunner

    from grader.cli import main

    result = CliRunner().invoke(main, ["sandbox"])
    assert result.exit_code == 0, result.output
    abi = landlock_abi()
    assert f"\nlandlock: on (ABI {abi}, applied by each job to itself: " in result.output
    rules = result.output.split("landlock rules of a job (its own folders have other names):\n")
    listed = [line.strip() for line in rules[1].splitlines() if line.startswith("  ")]
    assert "read /proc" in listed and "device /dev/null" in listed
    assert any(rule.startswith("write ") and rule.endswith("out") for rule in listed)
    assert ("tcp: no bind, no connect" in listed) == (abi >= 4)
