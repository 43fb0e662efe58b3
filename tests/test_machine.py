"""The CPU a result was computed on, the numeric paths jobs are pinned to, and the device."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import protocol
from grader.api import environment
from grader.cli import main
from grader.core import machine
from grader.core.machine import DeviceError


def test_the_cpu_is_named_with_the_flags_that_choose_kernels() -> None:
    described = machine.cpu()
    model, _, flags = described.partition(" [")
    assert model and flags.endswith("]")
    assert set(flags[:-1].split()) <= set(machine.RECORDED_FLAGS)


def test_jobs_are_pinned_to_the_cpus_level() -> None:
    env = protocol.child_env(1)
    level = machine.numeric_level()
    assert {key: env[key] for key in machine.PINNED[level]} == machine.PINNED[level]
    if platform.machine() == "x86_64":
        assert level in ("avx2", "sse4_2") and env["MKL_CBWR"] in ("AVX2", "SSE4_2")


def test_the_environment_needs_no_torch_import_on_the_cpu() -> None:
    import torch

    env = environment("cpu")
    assert (env.device, env.torch_version, env.cpu) == ("cpu", torch.__version__, machine.cpu())


def test_cuda_where_there_is_none_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRADER_REQUIRE_SANDBOX", raising=False)
    if machine.gpus():
        pytest.skip("this machine has a GPU")
    with pytest.raises(DeviceError, match=r"^--device cuda: no CUDA device is usable here$"):
        environment("cuda")
    source = tmp_path / "har.py"
    source.write_text("x = 1\n")
    result = CliRunner().invoke(main, ["check", str(source), "--device", "cuda", "--no-sandbox"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: --device cuda: no CUDA device is usable here"
    )
