"""The SQLite results store: every attempt kept, the newest one wins, the cache key is exact."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from pathlib import Path

import pytest

from grader.core.results import CacheKey, Environment, Mode, Policy, Result, Status
from grader.store.sqlite import Store, StoreError, SubmittedTask

ENV = Environment(torch_version="2.3.0", device="cpu")
KEY = CacheKey(
    content_hash="c" * 64,
    spec_digest="s" * 64,
    data_checksum="d" * 16,
    grader_version="0.1.0",
    mode=Mode.RETRAIN,
    torch_version="2.3.0",
    device="cpu",
)


def result(
    student: str = "alice", assignment: str = "mnist", key: CacheKey = KEY, **changes: object
) -> Result:
    base = Result(
        student=student,
        assignment=assignment,
        status="ok",
        message="",
        test_accuracy=0.97,
        train_accuracy=0.98,
        gap=0.01,
        targets={"A": True, "B": False},
        params=1234,
        epochs=3,
        train_seconds=1.5,
        mode=key.mode,
        seed=0,
        threads=1,
        weights_sha256="w" * 64,
        log_tail="tail",
        content_hash=key.content_hash,
        spec_digest=key.spec_digest,
        data_checksum=key.data_checksum,
        grader_version=key.grader_version,
        torch_version=key.torch_version,
        device=key.device,
        started_at="2024-01-01T00:00:00+00:00",
        finished_at="2024-01-01T00:01:00+00:00",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "grades.sqlite")


def test_new_store_is_empty(store: Store) -> None:
    assert store.latest() == []
    assert store.attempts() == 0
    assert store.path.is_file()


def test_record_round_trips_every_field(store: Store) -> None:
    original = result(message="a message", targets={"A": False, "B": True})
    store.record(original)
    assert store.latest() == [original]


def test_failed_result_with_nones_round_trips(store: Store) -> None:
    original = Result(student="bob", assignment="har", status="timeout", message="too slow")
    store.record(original)
    assert store.latest() == [original]


def test_latest_is_the_newest_attempt_per_submission(store: Store) -> None:
    store.record(result("alice", status="error", message="first"))
    store.record(result("bob", test_accuracy=0.5))
    store.record(result("alice", message="second"))
    store.record(result("alice", assignment="har", message="har attempt"))
    store.record(result("alice", message="third"))
    latest = store.latest()
    assert [(r.assignment, r.student, r.message) for r in latest] == [
        ("har", "alice", "har attempt"),
        ("mnist", "alice", "third"),
        ("mnist", "bob", ""),
    ]
    assert store.attempts() == 5


def test_store_persists_across_instances(tmp_path: Path) -> None:
    Store(tmp_path / "grades.sqlite").record(result())
    again = Store(tmp_path / "grades.sqlite")
    assert again.attempts() == 1
    assert again.latest() == [result()]


def test_cached_matches_on_the_full_key(store: Store) -> None:
    store.record(result(message="old"))
    store.record(result(message="new"))
    hit = store.cached("alice", "mnist", KEY)
    assert hit is not None
    assert hit.message == "new"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(CacheKey)])
def test_cached_misses_when_any_key_field_differs(store: Store, field: str) -> None:
    store.record(result())
    other = dataclasses.replace(KEY, **{field: "different"})
    assert store.cached("alice", "mnist", other) is None
    assert store.cached("alice", "mnist", KEY) is not None


def test_a_cpu_result_is_not_reused_for_a_cuda_run(store: Store) -> None:
    store.record(result())
    assert store.cached("alice", "mnist", dataclasses.replace(KEY, device="cuda")) is None
    assert store.cached("alice", "mnist", KEY) is not None


@pytest.mark.parametrize(
    ("student", "assignment"), [("bob", "mnist"), ("alice", "har"), ("Alice", "mnist")]
)
def test_cached_is_per_student_and_assignment(store: Store, student: str, assignment: str) -> None:
    store.record(result())
    assert store.cached(student, assignment, KEY) is None


def test_cached_returns_the_latest_under_that_key(store: Store) -> None:
    other = dataclasses.replace(KEY, content_hash="e" * 64)
    store.record(result(message="under KEY"))
    store.record(result(key=other, message="under other"))
    hit = store.cached("alice", "mnist", KEY)
    assert hit is not None
    assert hit.message == "under KEY"
    assert store.latest()[0].message == "under other"


def test_rows_record_the_environment(store: Store) -> None:
    store.record(result())
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT torch_version, device FROM attempts").fetchall() == [
            ("2.3.0", "cpu")
        ]


def test_results_read_back_with_named_statuses_and_modes(store: Store) -> None:
    store.record(result(status="timeout", mode="load"))
    (back,) = store.latest()
    assert back.status is Status.TIMEOUT and back.mode is Mode.LOAD


def test_a_run_is_logged_when_it_starts_and_completed_when_it_ends(store: Store) -> None:
    run_id = store.begin_run("2024-01-01T00:00:00+00:00", ["limits: on (x)"], ENV)
    store.record(result(), run_id)
    with sqlite3.connect(store.path) as db:
        started = db.execute("SELECT finished_at, graded, sandbox FROM runs").fetchall()
        assert started == [(None, None, '["limits: on (x)"]')]  # a killed run stays visible
        store.finish_run(run_id, "2024-01-01T00:02:00+00:00", graded=1, reused=0)
        assert db.execute("SELECT finished_at, graded, reused FROM runs").fetchall() == [
            ("2024-01-01T00:02:00+00:00", 1, 0)
        ]
        assert db.execute("SELECT run_id FROM attempts").fetchall() == [(run_id,)]


def test_concurrent_writers(store: Store) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def write(worker: int) -> None:
        try:
            start.wait()
            for i in range(20):
                store.record(result(f"s{worker}-{i}", message=f"{worker}/{i}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.attempts() == 160
    latest = store.latest()
    assert sorted(r.student for r in latest) == sorted(
        f"s{w}-{i}" for w in range(8) for i in range(20)
    )
    assert all(r.message == r.student[1:].replace("-", "/") for r in latest)


def test_concurrent_stores_on_one_file(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def write(worker: int) -> None:
        try:
            start.wait()
            own = Store(tmp_path / "grades.sqlite")
            for i in range(10):
                own.record(result(f"s{worker}", message=str(i)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = Store(tmp_path / "grades.sqlite")
    assert final.attempts() == 40
    assert [(r.student, r.message) for r in final.latest()] == [(f"s{w}", "9") for w in range(4)]


# --- unusable stores ------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"garbage", bytes(range(256)) * 16])
def test_corrupt_file(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "grades.sqlite"
    path.write_bytes(garbage)
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(info.value) == (
        f"{path} is not a usable results store (file is not a database); "
        "move it aside and run again to start a new one"
    )
    assert path.read_bytes() == garbage  # left for the user to inspect


def test_store_path_is_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "grades.sqlite"
    path.mkdir()
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(info.value) == (
        f"{path} is not a usable results store (unable to open database "
        "file); move it aside and run again to start a new one"
    )


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (("blocker", "grades.sqlite"), "File exists"),
        (("blocker", "results", "grades.sqlite"), "Not a directory"),
    ],
)
def test_out_under_a_regular_file(tmp_path: Path, parts: tuple[str, ...], reason: str) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    path = tmp_path.joinpath(*parts)
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(info.value).startswith("cannot create")
    assert str(info.value) == f"cannot create {path}: {reason}"


# --- which attempt stands for a student: best or latest -------------------------------------


def test_every_resubmission_is_an_attempt_of_its_own(store: Store) -> None:
    first = dataclasses.replace(KEY, content_hash="1" * 64)
    second = dataclasses.replace(KEY, content_hash="2" * 64)
    store.record(result(key=first, test_accuracy=0.98, gap=0.01))
    store.record(result(key=second, test_accuracy=0.95, gap=0.01))
    assert [r.content_hash for r in store.history("alice", "mnist")] == ["1" * 64, "2" * 64]
    assert store.attempts() == 2


def test_latest_and_best_policies(store: Store) -> None:
    store.record(result("alice", test_accuracy=0.97, gap=0.02, message="first"))
    store.record(result("alice", test_accuracy=0.98, gap=0.03, message="best"))
    store.record(result("alice", test_accuracy=0.98, gap=0.03, params=9999, message="tie, larger"))
    store.record(result("alice", status="error", test_accuracy=None, message="latest"))
    store.record(result("bob", status="timeout", test_accuracy=None, message="only failures"))
    store.record(result("bob", status="error", test_accuracy=None, message="bob latest"))
    store.record(result("carol", test_accuracy=0.9, message="carol"))
    latest = {r.student: r.message for r in store.standing(Policy.LATEST)}
    best = {r.student: r.message for r in store.standing(Policy.BEST)}
    assert latest == {"alice": "latest", "bob": "bob latest", "carol": "carol"}
    assert best == {"alice": "best", "bob": "bob latest", "carol": "carol"}
    assert store.standing(Policy.LATEST) == store.latest()


def test_best_breaks_ties_as_the_board_does_then_takes_the_newest(store: Store) -> None:
    store.record(result(test_accuracy=0.97, gap=0.02, params=100, message="older"))
    store.record(result(test_accuracy=0.97, gap=0.01, params=100, message="smaller gap"))
    store.record(result(test_accuracy=0.97, gap=0.01, params=100, message="same, newer"))
    (best,) = store.standing(Policy.BEST)
    assert best.message == "same, newer"


def test_best_picks_the_attempt_the_board_ranks_first(store: Store) -> None:
    """One ranking: an attempt without a parameter count (pickled weights) ranks after an
    equal one with a count, in the store's pick as on the board."""
    from grader.publish.ranking import ranked

    attempts = [
        result(test_accuracy=0.97, gap=0.01, params=None, message="not counted"),
        result(test_accuracy=0.97, gap=0.01, params=500, message="counted"),
        result(test_accuracy=0.97, gap=0.01, params=None, message="not counted, newer"),
    ]
    for attempt in attempts:
        store.record(attempt)
    (best,) = store.standing(Policy.BEST)
    board = ranked([dataclasses.replace(a, student=a.message) for a in attempts])
    assert best.message == board.loc[0, "student"] == "counted"


def test_reference_rows_are_submissions_of_their_own(store: Store) -> None:
    store.record(result("logreg", kind="baseline", message="baseline"))
    store.record(result("logreg", message="a student with that id"))
    assert sorted((r.kind, r.message) for r in store.latest()) == [
        ("baseline", "baseline"), ("student", "a student with that id")]  # fmt: skip


def test_new_fields_round_trip(store: Store) -> None:
    original = result(
        confusion={"train": [[3, 1], [0, 4]], "test": [[1, 1], [0, 2]]},
        class_accuracy={"train": [0.75, 1.0], "test": [0.5, None]},
        checks=[{"name": "defines_build_model", "passed": True}],
        kind="baseline",
    )
    store.record(original)
    assert store.latest() == [original]


# --- students' metadata and the course secret ---------------------------------------------------


def test_students_metadata_is_kept_and_updated(store: Store) -> None:
    store.record_students({"alice": {"pseudonym": "Owl", "late": True}, "bob": {}}, "t1")
    store.record_students({"alice": {"pseudonym": "Hawk"}}, "t2")
    assert store.students() == {"alice": {"pseudonym": "Hawk"}, "bob": {}}


def test_the_secret_is_made_once_per_store_and_kept(tmp_path: Path) -> None:
    first = Store(tmp_path / "a.sqlite").secret()
    assert len(first) == 32
    assert Store(tmp_path / "a.sqlite").secret() == first
    assert Store(tmp_path / "b.sqlite").secret() != first


# -- Slurm tasks --------------------------------------------------------------------------------


def task(
    student: str = "alice", key: CacheKey = KEY, job_id: str = "7_0", seed: int = 0
) -> SubmittedTask:
    return SubmittedTask(student, "mnist", key, seed, job_id, "/shared/jobs/%j")


def test_a_task_stays_open_until_its_seed_is_recorded(store: Store) -> None:
    run_id = store.begin_run("2024-01-01T00:00:00+00:00", [], ENV)
    tasks = [task(), task(seed=1, job_id="7_1"), task("bob", job_id="7_2")]
    ids = store.add_tasks(tasks, run_id, "2024-01-01T00:00:01")
    assert len(set(ids)) == 3
    added = [dataclasses.replace(t, id=i) for t, i in zip(tasks, ids, strict=True)]
    assert store.open_tasks() == added
    assert store.open_tasks()[0].key.mode is Mode.RETRAIN
    store.record(result(), run_id)  # a submission's row answers no task: its seeds do
    assert len(store.open_tasks()) == 3
    store.record_seed(result(), KEY)  # alice's seed 0 answers its task, in one transaction
    assert [(t.student, t.seed) for t in store.open_tasks()] == [("alice", 1), ("bob", 0)]
    store.record_seed(result(), KEY)  # a second result has no task left to close
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT student, seed, closed_by FROM slurm_tasks ORDER BY id").fetchall()
    assert rows == [("alice", 0, "result"), ("alice", 1, None), ("bob", 0, None)]


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(CacheKey)])
def test_a_result_under_another_key_leaves_the_task_open(store: Store, field: str) -> None:
    store.add_tasks([task()], 1, "2024-01-01T00:00:01")
    other = dataclasses.replace(KEY, **{field: Mode.LOAD if field == "mode" else "different"})
    store.record_seed(result(), other)
    store.record_seed(result("bob"), KEY)
    store.record_seed(result(seed=1), KEY)
    assert [t.student for t in store.open_tasks()] == ["alice"]


def test_abandoned_tasks_are_closed_without_a_result(store: Store) -> None:
    ids = store.add_tasks([task(), task("bob")], 1, "2024-01-01T00:00:01")
    store.abandon_tasks([ids[0]], "2024-01-01T00:00:02")
    assert [t.id for t in store.open_tasks()] == [ids[1]]
    store.record_seed(result(), KEY)  # closes nothing: alice's task was abandoned already
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT student, closed_by FROM slurm_tasks ORDER BY id").fetchall()
    assert rows == [("alice", "abandoned"), ("bob", None)]
