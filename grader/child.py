"""Entry point of the sandboxed child: `python -m grader.child PHASE IN_DIR OUT_DIR IDENTITY`.

PHASE `train` gets the training data, trains, and writes `model.safetensors`.
PHASE `eval` gets weights and inputs only (never labels), and writes class scores as `.npy`.
Both write `report.json` with a status and message; the grader treats it as untrusted text and
computes every metric itself from the files.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from grader.confine import confine
from grader.text import one_line

MESSAGE_CHARS = 300
SOURCE_NAME = "submission.py"


class WeightsError(Exception):
    """Submitted or trained weights cannot be loaded into the model."""


def main(argv: list[str]) -> int:
    phase, in_dir, out_dir, identity = argv[0], Path(argv[1]), Path(argv[2]), argv[3] == "1"
    confine(identity)
    try:
        job = json.loads((in_dir / "job.json").read_text())
        report = (train if phase == "train" else evaluate)(job, in_dir, out_dir)
    except BaseException as exc:  # every student failure, exit() included, becomes a report
        report = _failure(exc, in_dir / SOURCE_NAME)
    (out_dir / "report.json").write_text(json.dumps(report))
    return 0


def train(job: dict[str, Any], in_dir: Path, out_dir: Path) -> dict[str, Any]:
    import numpy as np
    import torch

    from grader import contract, training

    module, model, checks = _prepare(job, in_dir)
    hp = contract.parse_hparams(module.HPARAMS, job["max_epochs"])
    inputs = training.as_model_input(np.load(in_dir / "train_inputs.npy", allow_pickle=False))
    labels = torch.from_numpy(np.load(in_dir / "train_labels.npy", allow_pickle=False)).long()
    model.to(training.pick_device())
    training.seed_everything(job["seed"])
    started = time.perf_counter()
    if hasattr(module, "train"):
        dataset = torch.utils.data.TensorDataset(inputs, labels)
        module.train(model, dataset, dict(module.HPARAMS))
    else:
        training.train_standard(model, inputs, labels, hp, job["seed"])
    seconds = time.perf_counter() - started
    _save_model(model, out_dir)
    return {
        "status": "ok",
        "message": "",
        "epochs": hp.epochs,
        "train_seconds": seconds,
        "checks": checks,
    }


def evaluate(job: dict[str, Any], in_dir: Path, out_dir: Path) -> dict[str, Any]:
    import numpy as np

    from grader import training

    _, model, checks = _prepare(job, in_dir)
    _load_weights(model, in_dir / job["weights"])
    model.to(training.pick_device())
    for part in ("train", "test"):
        inputs = training.as_model_input(np.load(in_dir / f"{part}_inputs.npy", allow_pickle=False))
        scores = training.predict(model, inputs).numpy()
        np.save(out_dir / f"{part}_scores.npy", scores, allow_pickle=False)
    _save_model(model, out_dir)
    return {"status": "ok", "message": "", "checks": checks}


def _prepare(job: dict[str, Any], in_dir: Path) -> tuple[ModuleType, Any, list[str]]:
    """Import the submission and build its model, running the contract checks on both."""
    from grader import contract, training

    training.make_deterministic(job["seed"], job["threads"])
    module = _import_submission(in_dir / SOURCE_NAME)
    checks = contract.run_checks(contract.module_checks(module, job["max_epochs"]))
    training.seed_everything(job["seed"])
    model = module.build_model(tuple(job["input_shape"]), job["num_classes"])
    checks += contract.run_checks(
        contract.model_checks(model, tuple(job["input_shape"]), job["num_classes"])
    )
    return module, model, checks


def _save_model(model: Any, out_dir: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"))


def _import_submission(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("submission", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["submission"] = module
    spec.loader.exec_module(module)
    return module


def _load_weights(model: Any, path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise WeightsError(f"{path.name} holds a {type(state).__name__}, not a state_dict")
        model.load_state_dict(state, strict=True)
    except WeightsError:
        raise
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"weights do not load into the model: {first_line}") from None


def _failure(exc: BaseException, source: Path) -> dict[str, Any]:
    from grader.contract import ContractError

    text = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, ContractError | WeightsError):
        return _report("invalid", str(exc))
    if (
        isinstance(exc, MemoryError)
        or "can't allocate memory" in text
        or "out of memory" in text.lower()
    ):
        return _report("memory", "ran out of memory (" + text + ")")
    if isinstance(exc, SystemExit):
        return _report("error", f"the submission called exit({exc.code!r})")
    return _report("error", text + _student_line(exc, source))


def _student_line(exc: BaseException, source: Path) -> str:
    """Point at the deepest line of the student's own file, where the fix usually is."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(source)]
    return f" (line {frames[-1].lineno} of the submission)" if frames else ""


def _report(status: str, message: str) -> dict[str, Any]:
    return {"status": status, "message": one_line(message, MESSAGE_CHARS)}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
