"""The CPU results are computed on: named for the record, and the numeric paths jobs are pinned to.

Linear algebra libraries pick kernels by instruction set, and different kernels round
differently; pinning MKL, oneDNN and PyTorch's own kernels to one level (AVX2 where the CPU has
it) makes a result reproducible on any CPU with that level, not only on the same model.
"""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path

from grader.core.errors import UserError

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(UserError):
    """The device asked for is not here."""


RECORDED_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni",
                  "avx512_bf16", "amx_tile", "asimd", "sve")  # fmt: skip
# Level -> the libraries' own settings for it (environment variables of the job).
PINNED = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
    "sse4_2": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_CBWR": "SSE4_2",
    },
    "native": {},  # not x86: no MKL, and PyTorch has one set of kernels per level there
}


@cache
def cpu() -> str:
    """'model [flags]', the flags being those that choose numeric kernels."""
    model, flags = _cpuinfo()
    shown = [flag for flag in RECORDED_FLAGS if flag in flags]
    return f"{model} [{' '.join(shown)}]"


@cache
def numeric_level() -> str:
    """The instruction-set level jobs are pinned to on this machine."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return "native"
    _, flags = _cpuinfo()
    return "avx2" if {"avx2", "fma"} <= flags else "sse4_2"


def pinned_environment() -> dict[str, str]:
    return dict(PINNED[numeric_level()])


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and model in ("", platform.machine()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def gpus() -> list[str]:
    """NVIDIA GPUs by index, as the driver's device nodes show them (no CUDA call needed)."""
    return sorted(
        (p.name.removeprefix("nvidia") for p in Path("/dev").glob("nvidia[0-9]*")), key=int
    )
