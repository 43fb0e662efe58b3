"""What every use case shares: the specs it uses, the sandbox it opens, the data it grades on,
and the lines it says on the terminal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grader.core.spec import Spec, SpecsAsked
from grader.data.graded import GradingData, for_spec
from grader.data.registry import prepare
from grader.sandbox.box import Sandbox, SandboxOptions

Log = Callable[[str], None]


def find_specs(asked: SpecsAsked, near: Path, log: Log) -> Path:
    """The specs folder a command uses, said on the terminal."""
    found = asked.locate(near)
    log(f"specs: {found}")
    return found.folder


# How a job's namespaces are made (Sandbox.mode), as a student reads it.
NAMESPACING = {
    "bwrap": "bubblewrap",
    "unshare": "unshare",
    "forked": "own namespaces",
    "none": "no namespaces",
}


def open_sandbox(options: SandboxOptions, log: Log, *, brief: bool = False) -> Sandbox:
    """The sandbox, its proven layers said on the terminal (and a warning when weak); brief,
    in one line, for a student checking a file (`grader sandbox` lists them)."""
    sandbox = options.sandbox()
    if brief:
        log(sandbox_line(sandbox))
        return sandbox
    for layer in sandbox.layers:
        log(f"sandbox {layer}")
    log(f"jobs: {sandbox.launch}")
    warning = sandbox.weak_warning()
    if warning:
        log("warning: " + warning)
    return sandbox


def sandbox_line(sandbox: Sandbox) -> str:
    """The sandbox in one line: how jobs are contained, how many layers are on, which not."""
    off = [str(layer.name) for layer in sandbox.layers if not layer.on]
    on = len(sandbox.layers) - len(off)
    missing = f"; off: {', '.join(off)}" if off else ""
    return (
        f"sandbox: {NAMESPACING.get(sandbox.mode, sandbox.mode)}, {on} of "
        f"{len(sandbox.layers)} layers on{missing} (`grader sandbox` lists them)"
    )


def grading_data(spec: Spec, data_dir: Path, cache_dir: Path) -> GradingData:
    """The spec's dataset, prepared, and its private hold-out on this machine."""
    prepared = prepare(spec.assignment.dataset, data_dir, cache_dir)
    return for_spec(spec, prepared, data_dir, cache_dir)


def log_grading(file: Path, spec: Spec, data: GradingData, log: Log) -> None:
    for note in data.notes:
        log(note)
    log(f"grading {file} as {spec.name} ({data.data.description}; {data.holdout_said}) ...")
