"""The results store: every grading attempt, in one SQLite file. The only module that writes it.

Each attempt is committed in its own transaction (WAL, synchronous=FULL), so a run killed at any
moment keeps everything graded before it, and concurrent workers can write side by side.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import __version__
from grader.grading import Result

SCHEMA_VERSION = 1
CREATE_SECONDS = 60
_FIELDS = [f.name for f in dataclasses.fields(Result)]
_JSON_FIELDS = {"targets"}
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(_FIELDS)},
    torch_version TEXT NOT NULL,
    device TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_submission ON attempts (assignment, student, id);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    torch_version TEXT NOT NULL,
    device TEXT NOT NULL,
    sandbox TEXT NOT NULL,
    graded INTEGER NOT NULL,
    reused INTEGER NOT NULL
);
"""


class StoreError(Exception):
    """The store cannot be opened or written; the message says which file and why."""


@dataclass(frozen=True)
class Environment:
    torch_version: str
    device: str


@dataclass(frozen=True)
class CacheKey:
    """What must be unchanged for a stored result to be reused instead of regrading."""

    content_hash: str
    spec_digest: str
    data_checksum: str
    grader_version: str
    mode: str
    torch_version: str


class Store:
    def __init__(self, path: Path, environment: Environment) -> None:
        self.path = path
        self.environment = environment
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Fail with the OS's reason (read-only, immutable, full) before SQLite hides it.
            with tempfile.TemporaryFile(dir=path.parent):
                pass
            self._create()
        except OSError as exc:
            raise StoreError(f"cannot create {path}: {exc.strerror or exc}") from None

    def _create(self) -> None:
        """Schema and WAL mode, once per file. Switching to WAL needs the file to itself and
        SQLite does not wait for that, so graders opening a new store together take turns."""
        deadline = time.monotonic() + CREATE_SECONDS
        while True:
            try:
                with self._connect() as db:
                    db.execute("PRAGMA journal_mode = WAL")
                    db.executescript(_SCHEMA)
                    db.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                return
            except StoreError:
                if time.monotonic() > deadline or not _locked(self.path):
                    raise
                time.sleep(0.05)

    def record_run(
        self, started_at: str, finished_at: str, layers: list[str], graded: int, reused: int
    ) -> None:
        """The run's log: when, which isolation layers were on, how much was graded."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (started_at, finished_at, grader_version, torch_version, device, "
                "sandbox, graded, reused) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    started_at,
                    finished_at,
                    __version__,
                    self.environment.torch_version,
                    self.environment.device,
                    json.dumps(layers),
                    graded,
                    reused,
                ),
            )

    def record(self, result: Result) -> None:
        row = {name: _to_column(name, getattr(result, name)) for name in _FIELDS}
        row.update(torch_version=self.environment.torch_version, device=self.environment.device)
        columns = ", ".join(row)
        with self._connect() as db:
            db.execute(
                f"INSERT INTO attempts ({columns}) VALUES ({', '.join('?' * len(row))})",
                list(row.values()),
            )

    def cached(self, student: str, assignment: str, key: CacheKey) -> Result | None:
        """The latest attempt graded under exactly these conditions, if any."""
        conditions = " AND ".join(f"{name} = ?" for name in dataclasses.asdict(key))
        with self._connect() as db:
            row = db.execute(
                f"SELECT * FROM attempts WHERE student = ? AND assignment = ? AND "
                f"{conditions} ORDER BY id DESC LIMIT 1",
                [student, assignment, *dataclasses.asdict(key).values()],
            ).fetchone()
        return _to_result(row) if row else None

    def latest(self) -> list[Result]:
        """The newest attempt of every (assignment, student) ever graded into this store."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT a.* FROM attempts a JOIN (SELECT MAX(id) AS id FROM attempts "
                "GROUP BY assignment, student) m ON a.id = m.id "
                "ORDER BY a.assignment, a.student"
            ).fetchall()
        return [_to_result(row) for row in rows]

    def attempts(self) -> int:
        with self._connect() as db:
            count: int = db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        return count

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(sqlite3.connect(self.path, timeout=60)) as db:
                db.row_factory = sqlite3.Row
                db.execute("PRAGMA synchronous = FULL")  # per connection; WAL is per file
                with db:
                    yield db
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a usable results store ({exc}); move it aside "
                "and run again to start a new one"
            ) from None


def _locked(path: Path) -> bool:
    """Whether the store is only busy (another grader is creating it), not broken."""
    try:
        with closing(sqlite3.connect(path, timeout=0)) as db:
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc)
    except sqlite3.DatabaseError:
        return False
    return True


def _to_column(name: str, value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if name in _JSON_FIELDS else value


def _to_result(row: sqlite3.Row) -> Result:
    values = {name: row[name] for name in _FIELDS}
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name])
    return Result(**values)
