"""scikit-learn baselines, graded by the grader itself into reference rows (kind "baseline").

A baseline is the grader's own code, not a student's, so it runs in this process: fitted on the
training set, predicting on the same blind array a submission's evaluation job gets, and
scored and audited exactly as a submission is. Every board shows them, unranked.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import replace
from importlib.metadata import version
from typing import Any

import numpy as np

from grader.core.results import Mode, Result
from grader.jobs.context import GradingContext
from grader.jobs.grade import blind_inputs, now
from grader.jobs.verdict import base_row, scored

BASELINE = "baseline"  # the kind of their rows
PREFIX = "sklearn:"  # their rows' names: no student id holds a colon


def _logistic_regression(seed: int, threads: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=200, random_state=seed))


def _linear_svm(seed: int, threads: int) -> Any:
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Hinge loss by stochastic gradient descent: a linear SVM. A fixed 20 passes over the data
    # bound its time (left to converge on MNIST it ran for minutes).
    model = SGDClassifier(loss="hinge", max_iter=20, tol=None, random_state=seed)
    return make_pipeline(StandardScaler(), model)


def _random_forest(seed: int, threads: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    # 30 trees bound the time: a tree on MNIST's 60,000 images takes seconds on one thread.
    return RandomForestClassifier(n_estimators=30, random_state=seed, n_jobs=threads)


MODELS: dict[str, Callable[[int, int], Any]] = {
    "logistic_regression": _logistic_regression,
    "linear_svm": _linear_svm,
    "random_forest": _random_forest,
}


def content_hash(name: str) -> str:
    """What a baseline's reuse key holds in place of a file's hash: its name and sklearn's
    version (models.py's settings change only with the grader version, also in the key). The
    version is read from the installed package's metadata: importing scikit-learn costs a run
    about a second, and a run whose baselines are all reused needs none of it."""
    return hashlib.sha256(f"{name}:{version('scikit-learn')}".encode()).hexdigest()


def grade_baseline(name: str, ctx: GradingContext) -> Result:
    """Fit and score one baseline with the context's seed; never raises for the model."""
    spec, data = ctx.spec, ctx.data
    # The grader's own code on the CPU, never a student's: reused while sklearn's version holds.
    base = base_row(
        ctx, PREFIX + name, content_hash(name), Mode.RETRAIN, now(), kind=BASELINE, device="cpu"
    )
    mixed = blind_inputs(ctx)
    model = MODELS[name](ctx.seed, spec.grading.threads)
    started = time.perf_counter()
    try:
        model.fit(_features(data.load("train_inputs")), np.asarray(data.load("train_labels")))
    except Exception as exc:  # e.g. too little memory: the row says so
        return replace(base, message=f"{type(exc).__name__}: {exc}", finished_at=now())
    seconds = time.perf_counter() - started
    # One blind array, as a submission's evaluation job gets, scored and audited as theirs:
    # a baseline is the calibration's first honest model.
    row = scored(base, ctx, mixed, model.predict(_features(mixed.inputs)))
    return replace(row, train_seconds=seconds, finished_at=now())


def _features(inputs: np.ndarray) -> np.ndarray:
    """Rows of floats as the models see them: images as [0, 1] pixels, flattened."""
    flat = np.asarray(inputs).reshape(len(inputs), -1)
    return flat.astype(np.float32) / 255.0 if flat.dtype == np.uint8 else flat.astype(np.float32)
