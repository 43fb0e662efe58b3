"""The results store: every grading attempt, in one SQLite file. The only code that writes it.

Each attempt is committed in its own transaction (WAL, synchronous=FULL), so a run killed at any
moment keeps everything graded before it, and concurrent workers can write side by side. Opening
a store written by an older grader upgrades it in place (see migrations.py).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import __version__
from grader.core.errors import UserError
from grader.core.results import RANKING, STUDENT, CacheKey, Environment, Mode, Policy, Result
from grader.store import migrations

DB_NAME = "grades.sqlite"  # the store's name in a results folder
CREATE_SECONDS = 60
_FIELDS = [f.name for f in dataclasses.fields(Result)]
_JSON_FIELDS = {
    "targets",
    "history",
    "confusion",
    "class_accuracy",
    "checks",
    "seeds",
    "per_seed",
    "own_hparams",
    "hparam_warnings",
    "test_predictions",
}
# One row per submission: a student's (or a reference row's) attempts at one assignment.
_SUBMISSION = "assignment, kind, student"
# Best first: graded, then as the board ranks (RANKING), newest first.
_BEST_FIRST = ", ".join(
    [
        "(status = 'ok') DESC",
        *(f"{name} {'DESC' if down else 'ASC'} NULLS LAST" for name, down in RANKING),
        "id DESC",
    ]
)
SECRET_KEY = "anonymize_secret"
_KEY_FIELDS = [f.name for f in dataclasses.fields(CacheKey)]  # all of them are Result fields too
_KEY_MATCH = " AND ".join(f"{name} = ?" for name in _KEY_FIELDS)  # with _key_values(key)


@dataclass(frozen=True)
class SubmittedTask:
    """One seed of a submission handed to Slurm, its result not recorded yet: where it will be."""

    student: str
    assignment: str
    key: CacheKey  # what the submission is graded under (all its seeds)
    seed: int  # the seed this task grades
    job_id: str  # submitit's: "<array job>_<index>", or "<job>" for a lone task
    folder: str  # submitit's folder pattern (it holds %j)
    id: int = 0  # the store's row id; 0 until added


@dataclass(frozen=True)
class RunRequest:
    """Whom a run grades and why, as the person asked: `--only` students (empty: everyone)
    and a `--reason` (a regrade request), kept with the run."""

    only: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class SimilarPair:
    """Two students' files copy detection found alike (grader/similarity), as a board names
    them: by both files' content hashes, so a resubmission is not named by its old file's."""

    assignment: str
    student_a: str
    hash_a: str
    student_b: str
    hash_b: str
    code_similarity: float
    error_consistency: float | None
    shared_wrong: float | None
    verdict: str
    reviewed: bool


class StoreError(UserError):
    """The store cannot be opened or written; the message says which file and why."""

    def __init__(self, message: str, *, busy: bool = False) -> None:
        super().__init__(message)
        self.busy = busy  # another grader holds the file: worth waiting for


class Store:
    def __init__(self, path: Path, *, create: bool = True) -> None:
        """Open (or, with create, make) the store at path, upgrading an older one."""
        self.path = path
        if not create and not path.exists():
            raise StoreError(f"no results store at {path}; run `grader run` first")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Fail with the OS's reason (read-only, immutable, full) before SQLite hides it.
            with tempfile.TemporaryFile(dir=path.parent):
                pass
            self._open()
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from None

    def _open(self) -> None:
        """WAL mode once per file, then the schema. Switching to WAL needs the file to itself and
        SQLite does not wait for that, so graders opening a new store together take turns."""
        deadline = time.monotonic() + CREATE_SECONDS
        while True:
            try:
                with self._connect(autocommit=True) as db:
                    db.execute("PRAGMA journal_mode = WAL")
                    migrations.upgrade(db)
                return
            except StoreError as exc:
                if time.monotonic() > deadline or not exc.busy:
                    raise
                time.sleep(0.05)

    def begin_run(
        self,
        started_at: str,
        layers: list[str],
        environment: Environment,
        request: RunRequest = RunRequest(),
    ) -> int:
        """Log a run as it starts: when, which isolation layers, where, for whom and why.
        Returns its id."""
        only = json.dumps(list(request.only)) if request.only else None
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO runs (started_at, grader_version, torch_version, device, sandbox, "
                "only_students, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    started_at,
                    __version__,
                    environment.torch_version,
                    environment.device,
                    json.dumps(layers),
                    only,
                    request.reason,
                ),
            )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(self, run_id: int, finished_at: str, graded: int, reused: int) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, graded = ?, reused = ? WHERE id = ?",
                (finished_at, graded, reused, run_id),
            )

    def record(self, result: Result, run_id: int | None = None) -> None:
        """Add an attempt."""
        row = {name: _to_column(name, getattr(result, name)) for name in _FIELDS}
        row["run_id"] = run_id
        columns = ", ".join(row)
        with self._connect() as db:
            db.execute(
                f"INSERT INTO attempts ({columns}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )

    def add_tasks(self, tasks: list[SubmittedTask], run_id: int, submitted_at: str) -> list[int]:
        """Remember tasks just handed to Slurm, in one transaction; return their row ids."""
        columns = ["run_id", "student", "assignment", *_KEY_FIELDS, "seed", "job_id", "folder"]
        insert = (
            f"INSERT INTO slurm_tasks ({', '.join(columns)}, submitted_at) "
            f"VALUES ({', '.join('?' * (len(columns) + 1))})"
        )
        ids = []
        with self._connect() as db:
            for t in tasks:
                row = [run_id, t.student, t.assignment, *_key_values(t.key), t.seed]
                cursor = db.execute(insert, [*row, t.job_id, t.folder, submitted_at])
                assert cursor.lastrowid is not None
                ids.append(cursor.lastrowid)
        return ids

    def open_tasks(self) -> list[SubmittedTask]:
        """Tasks handed to Slurm whose attempt is not recorded and that were not abandoned."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM slurm_tasks WHERE closed_at IS NULL ORDER BY id"
            ).fetchall()
        return [
            SubmittedTask(
                student=row["student"],
                assignment=row["assignment"],
                key=_to_key(row),
                seed=row["seed"],
                job_id=row["job_id"],
                folder=row["folder"],
                id=row["id"],
            )
            for row in rows
        ]

    def abandon_tasks(self, ids: list[int], when: str) -> None:
        """Close tasks that will never be recorded (cancelled, or graded under another key)."""
        with self._connect() as db:
            db.executemany(
                "UPDATE slurm_tasks SET closed_at = ?, closed_by = 'abandoned' "
                "WHERE id = ? AND closed_at IS NULL",
                [(when, task_id) for task_id in ids],
            )

    def cached(self, student: str, assignment: str, key: CacheKey) -> Result | None:
        """The latest attempt graded under exactly these conditions, if any."""
        with self._connect() as db:
            row = db.execute(
                f"SELECT * FROM attempts WHERE student = ? AND assignment = ? AND "
                f"{_KEY_MATCH} ORDER BY id DESC LIMIT 1",
                [student, assignment, *_key_values(key)],
            ).fetchone()
        return _to_result(row) if row else None

    def record_seed(self, result: Result, key: CacheKey) -> None:
        """One seed's result of a submission, reused by later runs. It answers the open Slurm
        task that graded it, closed in the same transaction: a task's result is kept once."""
        row = {name: _to_column(name, getattr(result, name)) for name in _FIELDS}
        with self._connect() as db:
            db.execute(
                "INSERT INTO seed_attempts (student, assignment, seed, reuse_key, result) "
                "VALUES (?, ?, ?, ?, ?)",
                (result.student, result.assignment, result.seed, _key_text(key), json.dumps(row)),
            )
            db.execute(
                "UPDATE slurm_tasks SET closed_at = ?, closed_by = 'result' "
                "WHERE student = ? AND assignment = ? AND seed = ? AND closed_at IS NULL AND "
                + _KEY_MATCH,
                [
                    result.finished_at or result.started_at,
                    result.student,
                    result.assignment,
                    result.seed,
                    *_key_values(key),
                ],
            )

    def cached_seed(self, student: str, assignment: str, seed: int, key: CacheKey) -> Result | None:
        """The latest result of this seed graded under these conditions (the key's seeds aside)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT result FROM seed_attempts WHERE student = ? AND assignment = ? AND "
                "seed = ? AND reuse_key = ? ORDER BY id DESC LIMIT 1",
                (student, assignment, seed, _key_text(key)),
            ).fetchone()
        if row is None:
            return None
        values = json.loads(row["result"])
        for name in _JSON_FIELDS & values.keys():  # a seed kept before a field existed lacks it
            values[name] = json.loads(values[name])
        return Result(**values)

    def latest(self) -> list[Result]:
        """The newest attempt of every (assignment, student) ever graded into this store."""
        return self.standing(Policy.LATEST)

    def standing(self, policy: Policy) -> list[Result]:
        """One attempt per submission as the policy picks it: the newest, or the best graded
        (the newest when none was graded). Resubmissions are kept as attempts of their own."""
        order = "id DESC" if Policy(policy) is Policy.LATEST else _BEST_FIRST
        with self._connect() as db:
            rows = db.execute(
                f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {_SUBMISSION} "
                f"ORDER BY {order}) AS pick FROM attempts) WHERE pick = 1 "
                "ORDER BY assignment, kind, student"
            ).fetchall()
        return [_to_result(row) for row in rows]

    def history(self, student: str, assignment: str) -> list[Result]:
        """Every attempt of one student at one assignment, oldest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM attempts WHERE student = ? AND assignment = ? ORDER BY id",
                (student, assignment),
            ).fetchall()
        return [_to_result(row) for row in rows]

    def predictions(
        self, assignment: str, data_checksum: str
    ) -> dict[tuple[str, str], dict[str, str]]:
        """(student, content hash) -> the packed test predictions by seed of that file's newest
        attempt graded on this data (other data's predictions answer other labels)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT student, content_hash, test_predictions FROM attempts WHERE "
                "assignment = ? AND kind = ? AND data_checksum = ? AND test_predictions != '{}' "
                "ORDER BY id",
                (assignment, STUDENT, data_checksum),
            ).fetchall()
        return {(r["student"], r["content_hash"]): json.loads(r["test_predictions"]) for r in rows}

    def keep_base(self, file: str, result: Result) -> None:
        """A base file's graded predictions (result: its row, never recorded as an attempt)."""
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO base_predictions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    result.assignment,
                    file,
                    result.content_hash,
                    result.data_checksum,
                    result.grader_version,
                    json.dumps(result.test_predictions, sort_keys=True),
                    result.finished_at,
                ),
            )

    def base_predictions(
        self, assignment: str, file: str, content_hash: str, data_checksum: str
    ) -> dict[str, str]:
        """A base file's predictions by seed, graded from this very file on this data by this
        grader; empty when it was not graded so."""
        with self._connect() as db:
            row = db.execute(
                "SELECT test_predictions FROM base_predictions WHERE assignment = ? AND "
                "file = ? AND content_hash = ? AND data_checksum = ? AND grader_version = ?",
                (assignment, file, content_hash, data_checksum, __version__),
            ).fetchone()
        return {} if row is None else dict(json.loads(row["test_predictions"]))

    def keep_pairs(self, assignment: str, pairs: list[SimilarPair], at: str) -> None:
        """The assignment's pairs as copy detection just found them, replacing the last."""
        fields = [f.name for f in dataclasses.fields(SimilarPair)]
        insert = (
            f"INSERT INTO similar_pairs ({', '.join(fields)}, found_at) "
            f"VALUES ({', '.join('?' * (len(fields) + 1))})"
        )
        with self._connect() as db:
            db.execute("DELETE FROM similar_pairs WHERE assignment = ?", (assignment,))
            db.executemany(insert, [[*dataclasses.astuple(p), at] for p in pairs])

    def similar_pairs(self) -> list[SimilarPair]:
        fields = [f.name for f in dataclasses.fields(SimilarPair)]
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(fields)} FROM similar_pairs "
                "ORDER BY assignment, student_a, student_b"
            ).fetchall()
        return [SimilarPair(**{**dict(r), "reviewed": bool(r["reviewed"])}) for r in rows]

    def record_students(self, metadata: dict[str, dict[str, Any]], at: str) -> None:
        """What each student's student.toml says now (validated by discovery)."""
        with self._connect() as db:
            db.executemany(
                "INSERT INTO students VALUES (?, ?, ?) ON CONFLICT (student) DO UPDATE "
                "SET meta = excluded.meta, updated_at = excluded.updated_at",
                [(s, json.dumps(m, sort_keys=True), at) for s, m in sorted(metadata.items())],
            )

    def students(self) -> dict[str, dict[str, Any]]:
        """Each student's metadata as last recorded (raw: validate before use)."""
        with self._connect() as db:
            rows = db.execute("SELECT student, meta FROM students").fetchall()
        found = {}
        for row in rows:
            try:
                meta = json.loads(row["meta"])
            except ValueError:
                continue
            if isinstance(meta, dict):
                found[row["student"]] = meta
        return found

    def secret(self) -> bytes:
        """This store's (this course's) secret for anonymous ids: made once, kept in the store,
        never shown. Without it the ids cannot be recomputed from a roster."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (SECRET_KEY, secrets.token_hex(32)),
            )
            value: str = db.execute(
                "SELECT value FROM meta WHERE key = ?", (SECRET_KEY,)
            ).fetchone()[0]
        return bytes.fromhex(value)

    def attempts(self) -> int:
        with self._connect() as db:
            count: int = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        return count

    @contextmanager
    def _connect(self, *, autocommit: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            with closing(sqlite3.connect(self.path, timeout=60)) as db:
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA synchronous = FULL")  # per connection; WAL is per file
                if autocommit:
                    db.isolation_level = None
                    yield db
                else:
                    with db:
                        yield db
        except migrations.NewerStoreError as exc:
            raise StoreError(
                f"{self.path} was written by a newer course-grader ({exc}); upgrade the grader "
                "to read it"
            ) from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a usable results store ({exc}); move it aside "
                "and run again to start a new one",
                busy=isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc),
            ) from None


def _key_text(key: CacheKey) -> str:
    values = dataclasses.asdict(dataclasses.replace(key, seeds=""))
    return json.dumps({name: str(value) for name, value in values.items()}, sort_keys=True)


def _key_values(key: CacheKey) -> list[str]:
    return [str(getattr(key, name)) for name in _KEY_FIELDS]


def _to_key(row: sqlite3.Row) -> CacheKey:
    values = {name: row[name] for name in _KEY_FIELDS}
    return CacheKey(**{**values, "mode": Mode(values["mode"])})


def _to_column(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return json.dumps(value, sort_keys=True)
    return str(value) if isinstance(value, str) else value  # StrEnums are stored as text


def _to_result(row: sqlite3.Row) -> Result:
    values = {name: row[name] for name in _FIELDS}
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name])
    return Result(**values)
