"""The sandbox's layer names, whether all are required, and what a job's /proc/self/status shows."""

from __future__ import annotations

import json
import os
import re

from grader.sandbox.leases import JOB_UIDS

LAYER_NAMES = ["namespaces", "identity", "limits", "cgroups", "seccomp", "landlock"]


def require_sandbox() -> bool:
    """Whether this run requires every sandbox layer (GRADER_REQUIRE_SANDBOX=1, as CI sets):
    there what the machine lacks fails a test instead of skipping it."""
    return os.environ.get("GRADER_REQUIRE_SANDBOX", "") not in ("", "0")


# A submission whose build_model reports what the job runs under, as its error message.
READ_STATUS = """
import json
import json
import os
import re
import torch

HPARAMS = {"epochs": 1, "batch_size": 32, "lr": 0.01}


def build_model(input_shape, num_classes):
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    keep = {k: fields[k] for k in ("Seccomp", "Uid", "CapEff", "CapBnd", "NoNewPrivs")}
    keep["net"] = os.readlink("/proc/self/ns/net")
    try:
        keep["listed_root"] = bool(os.listdir("/"))
    except PermissionError:
        keep["listed_root"] = False
    try:
        open("/etc/hostname").close()
        keep["read_etc"] = True
    except OSError:
        keep["read_etc"] = False
    raise RuntimeError("STATUS" + json.dumps(keep) + "END")
"""


def status_in(message: str) -> dict[str, str]:
    """What READ_STATUS said, from its row's message."""
    found = re.search(r"STATUS(\{.*\})END", message)
    assert found, message
    status: dict[str, str] = json.loads(found.group(1))
    return status


def assert_status_shows(
    status: dict[str, str], on: set[str], grader_uid: int | None = None
) -> None:
    """/proc/self/status inside a job (READ_STATUS's) shows exactly the layers that are on;
    a job without a uid of its own runs as the grader's (this process's unless said)."""
    assert status["Seccomp"] == ("2" if "seccomp" in on else "0")
    if "identity" in on:
        uid = int(status["Uid"].split()[0])
        assert uid in JOB_UIDS and status["Uid"].split() == [str(uid)] * 4
        assert status["CapEff"] == status["CapBnd"] == "0" * 16
        assert status["NoNewPrivs"] == "1"
    else:
        assert status["Uid"].split()[0] == str(os.getuid() if grader_uid is None else grader_uid)
    assert (status["net"] != os.readlink("/proc/self/ns/net")) == ("namespaces" in on)
    # Landlock grants no rule on / and none on /etc/hostname, whatever the view shows.
    assert status["listed_root"] is ("landlock" not in on)
    if "landlock" in on:
        assert status["read_etc"] is False
