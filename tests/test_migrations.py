"""The store's schema history: a store written by course-grader 0.1 (kept as a fixture) opens,
is upgraded in place by named migrations, and keeps every row; a newer store is refused."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.core.results import Mode, Status
from grader.store import migrations
from grader.store.sqlite import Store, StoreError

FIXTURE = Path(__file__).parent / "fixtures" / "grades-v1.sqlite"
EXAMPLES = {"alice", "bob", "carol", "dave", "erin", "frank", "grace"}


@pytest.fixture
def v1_store(tmp_path: Path) -> Path:
    """A copy of a grades.sqlite that course-grader 0.1 wrote grading the seven examples."""
    path = tmp_path / "results" / "grades.sqlite"
    path.parent.mkdir()
    shutil.copyfile(FIXTURE, path)
    return path


def _tables(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as db:
        query = (
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
        names = [r[0] for r in db.execute(query)]
        return {n: [c[1] for c in db.execute(f"PRAGMA table_info({n})")] for n in names}


def _version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return migrations.version(db)


def test_the_fixture_is_a_version_1_store(v1_store: Path) -> None:
    # A copy: opening the file in place needs a checkout its reader may write into.
    assert _version(v1_store) == 1
    assert "migrations" not in _tables(v1_store)
    assert "run_id" not in _tables(v1_store)["attempts"]


def test_a_v1_store_is_upgraded_in_place_and_keeps_its_rows(v1_store: Path) -> None:
    store = Store(v1_store)
    assert _version(v1_store) == migrations.LATEST
    since_v1 = [(v, name) for v, (name, _) in enumerate(migrations.MIGRATIONS, 1) if v > 1]
    with sqlite3.connect(v1_store) as db:
        assert db.execute("SELECT version, name FROM migrations").fetchall() == since_v1
        assert db.execute("SELECT graded, reused FROM runs").fetchall() == [(7, 0)]
        assert db.execute("SELECT COUNT(*) FROM attempts WHERE run_id IS NULL").fetchone() == (7,)
    results = {r.student: r for r in store.latest()}
    assert set(results) == EXAMPLES
    assert results["dave"].status is Status.ERROR
    assert results["dave"].message.startswith("train: NameError: name 'num_class'")
    assert results["erin"].mode is Mode.RETRAIN and results["erin"].ok
    assert results["alice"].targets == {"A": True, "B": False}
    assert all(r.grader_version == "0.1.0" and r.device == "cpu" for r in results.values())
    assert all(r.history == [] and r.best_epoch is None for r in results.values())


def test_a_new_store_and_an_upgraded_one_have_the_same_schema(
    v1_store: Path, tmp_path: Path
) -> None:
    Store(v1_store)
    fresh = tmp_path / "fresh.sqlite"
    Store(fresh)
    assert _tables(fresh) == _tables(v1_store)
    with sqlite3.connect(fresh) as db:
        assert [r[0] for r in db.execute("SELECT name FROM migrations ORDER BY version")] == [
            name for name, _ in migrations.MIGRATIONS
        ]


def test_opening_twice_applies_nothing_more(v1_store: Path) -> None:
    Store(v1_store)
    Store(v1_store)
    with sqlite3.connect(v1_store) as db:
        assert db.execute("SELECT COUNT(*) FROM migrations").fetchone() == (migrations.LATEST - 1,)


def test_graders_opening_an_old_store_together_upgrade_it_once(v1_store: Path) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_store() -> None:
        try:
            start.wait()
            Store(v1_store).latest()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _version(v1_store) == migrations.LATEST


def test_a_failing_migration_leaves_the_store_as_it_was(
    v1_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE attempts ADD COLUMN half_done INTEGER")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(migrations, "MIGRATIONS", [migrations.MIGRATIONS[0], ("broken", broken)])
    monkeypatch.setattr(migrations, "LATEST", 2)
    with pytest.raises(StoreError, match="is not a usable results store"):
        Store(v1_store)
    assert _version(v1_store) == 1
    assert "half_done" not in _tables(v1_store)["attempts"]


def test_a_store_from_a_newer_grader_is_a_one_line_error(v1_store: Path) -> None:
    with sqlite3.connect(v1_store) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError) as caught:
        Store(v1_store)
    assert str(caught.value) == (
        f"{v1_store} was written by a newer course-grader (schema version 99; this grader "
        f"knows up to {migrations.LATEST}); upgrade the grader to read it"
    )


def test_grader_leaderboard_shows_the_rows_of_a_v1_store(v1_store: Path) -> None:
    result = CliRunner().invoke(main, ["leaderboard", "--out", str(v1_store.parent)])
    assert result.exit_code == 0, result.output
    lines = (v1_store.parent / "leaderboard.csv").read_text().splitlines()
    header = "rank,student,assignment,status,test_accuracy,train_accuracy,gap,target_a,target_b,"
    assert lines[0].startswith(header + "params,")
    ranked = [line.split(",")[:4] for line in lines[1:]]
    assert ranked == [
        ["1", "frank", "har", "ok"],
        ["2", "alice", "har", "ok"],
        ["", "grace", "har", "invalid"],
        ["1", "erin", "mnist", "ok"],
        ["2", "bob", "mnist", "ok"],
        ["3", "carol", "mnist", "ok"],
        ["", "dave", "mnist", "error"],
    ]
    assert _version(v1_store) == migrations.LATEST
