"""The tutorial's MNIST pipeline against the grader's training loop, on the real MNIST.

Tutorial: torchvision's MNIST dataset with a ToTensor per item, a shuffling DataLoader.
Grader: the standard loop the child runs (one tensor, one shuffle per epoch). Same model (the
MNIST starter's), optimizer, loss, batch size, epochs and seed, one thread, in turn each round;
then both models' test accuracy.

    python bench/train_speed.py --data-dir ../shared/data [--batch-sizes 10,64] [--epochs 1]
        [--rounds 1] [--limit N]
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import importlib.util
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from timing import interleaved, ratio, spread
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from grader.child import contract, training
from grader.data.mnist import FILES
from grader.data.registry import default_cache_dir, default_data_dir, prepare

REPO = Path(__file__).resolve().parents[1]
SEED = 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--batch-sizes", default="10,64")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="train on the first N images")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    starter = _module(REPO / "starter" / "mnist.py")
    data = prepare("mnist", args.data_dir, args.cache_dir)
    limit = args.limit or data.train_size
    inputs = training.as_model_input(np.array(data.load("train_inputs")[:limit]))
    labels = torch.from_numpy(np.array(data.load("train_labels")[:limit])).long()
    test_inputs = training.as_model_input(np.array(data.load("test_inputs")))
    test_labels = np.array(data.load("test_labels"))
    with tempfile.TemporaryDirectory() as folder:
        tutorial_set = _tutorial_dataset(args.data_dir / "MNIST" / "raw", Path(folder), limit)
        for batch_size in map(int, args.batch_sizes.split(",")):
            hp = dataclasses.replace(
                contract.parse_hparams(starter.HPARAMS, 100),
                batch_size=batch_size,
                epochs=args.epochs,
            )
            accuracy: dict[str, float] = {}

            def run(way: str, hp: contract.HParams = hp, accuracy: dict = accuracy) -> float:
                training.seed_everything(SEED)
                model = starter.build_model((1, 28, 28), 10)
                started = time.perf_counter()
                if way == "tutorial":
                    _tutorial_loop(model, tutorial_set, hp)
                else:
                    training.train_standard(model, inputs, labels, hp, SEED)
                seconds = time.perf_counter() - started
                predicted = training.predict(model, test_inputs).argmax(dim=1).numpy()
                accuracy[way] = float(np.mean(predicted == test_labels))
                return seconds

            figures = interleaved(
                {"tutorial": lambda: run("tutorial"), "grader": lambda: run("grader")},
                args.rounds,
            )
            _report(batch_size, limit, args.epochs, figures, accuracy)
    return 0


def _report(
    batch_size: int, limit: int, epochs: int, figures: dict[str, list[float]], accuracy: dict
) -> None:
    print(f"batch {batch_size}, {limit} images, {epochs} epoch(s):")
    for way, values in figures.items():
        print(f"  {way:9s} {spread(values)}  test accuracy {accuracy[way]:.4f}")
    speedup = statistics.median(
        t / g for t, g in zip(figures["tutorial"], figures["grader"], strict=False)
    )
    points = 100 * (accuracy["grader"] - accuracy["tutorial"])
    print(f"  {ratio(figures, 'tutorial', 'grader')}  (the grader is {speedup:.2f}x as fast)")
    print(f"  accuracy: grader - tutorial = {points:+.2f} points")


def _tutorial_dataset(raw: Path, folder: Path, limit: int) -> Subset:
    """torchvision's MNIST as a tutorial builds it: PIL images, ToTensor per item."""
    unpacked = folder / "MNIST" / "raw"
    unpacked.mkdir(parents=True)
    for name in FILES:
        with gzip.open(raw / name) as packed, (unpacked / Path(name).stem).open("wb") as out:
            shutil.copyfileobj(packed, out)
    full = datasets.MNIST(str(folder), train=True, download=False, transform=transforms.ToTensor())
    return Subset(full, range(limit))


def _tutorial_loop(model: torch.nn.Module, dataset: Subset, hp: contract.HParams) -> None:
    loader = DataLoader(
        dataset,
        batch_size=hp.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(SEED),
    )
    optimizer = training.make_optimizer(model, hp)
    loss_fn = F.nll_loss if hp.loss == "nll" else F.cross_entropy
    for _ in range(hp.epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(main())
