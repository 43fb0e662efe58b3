"""Where jobs run: torch's version and the device, recorded with every result and part of its
reuse key. Torch is only imported where an NVIDIA GPU is present, to ask whether CUDA works."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from grader.core.machine import DEVICES, DeviceError, cpu, gpus
from grader.core.results import Environment


def environment(device: str = "auto") -> Environment:
    """This machine's, for jobs on `device` (auto: CUDA when a GPU is usable)."""
    check_device(device)
    cuda = bool(gpus()) and device != "cpu" and _cuda_works()
    if device == "cuda" and not cuda:
        raise DeviceError("--device cuda: no CUDA device is usable here")
    return Environment(torch_version(), "cuda" if cuda else "cpu", cpu())


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")


def torch_version() -> str:
    """torch.__version__ (with its build tag, e.g. +cu132) without importing torch."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return "none"
    text = (Path(spec.submodule_search_locations[0]) / "version.py").read_text()
    found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    return found.group(1) if found else "unknown"


def _cuda_works() -> bool:
    import torch

    return bool(torch.cuda.is_available())
