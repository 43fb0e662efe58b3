"""The results store's schema, as named migrations applied in order.

A store's version is the number of migrations applied to it. A new store gets them all; an older
one gets those it lacks, each in its own transaction, recorded in the `migrations` table. Never
edit a migration that has shipped: add the next one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

Migration = tuple[str, Callable[[sqlite3.Connection], None]]


def create_v1_schema(db: sqlite3.Connection) -> None:
    """The schema course-grader 0.1 created (its version 1, before migrations existed)."""
    for statement in (
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE IF NOT EXISTS attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            student, assignment, status, message, test_accuracy, train_accuracy, gap, targets,
            params, epochs, train_seconds, mode, seed, threads, weights_sha256, log_tail,
            content_hash, spec_digest, data_checksum, grader_version, started_at, finished_at,
            torch_version TEXT NOT NULL,
            device TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS attempts_by_submission ON attempts (assignment, student, id)",
        """CREATE TABLE IF NOT EXISTS runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            grader_version TEXT NOT NULL,
            torch_version TEXT NOT NULL,
            device TEXT NOT NULL,
            sandbox TEXT NOT NULL,
            graded INTEGER NOT NULL,
            reused INTEGER NOT NULL
        )""",
    ):
        db.execute(statement)


def attempts_know_their_run(db: sqlite3.Connection) -> None:
    """A run is recorded when it starts, not only if it finishes, and each attempt names the
    run that graded it (and so the sandbox layers it had). Old attempts' run is unknown."""
    db.execute(
        """CREATE TABLE runs_v2 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            grader_version TEXT NOT NULL,
            torch_version TEXT NOT NULL,
            device TEXT NOT NULL,
            sandbox TEXT NOT NULL,
            graded INTEGER,
            reused INTEGER
        )"""
    )
    db.execute("INSERT INTO runs_v2 SELECT * FROM runs")
    db.execute("DROP TABLE runs")
    db.execute("ALTER TABLE runs_v2 RENAME TO runs")
    db.execute("ALTER TABLE attempts ADD COLUMN run_id INTEGER REFERENCES runs (id)")


def attempts_keep_training_history(db: sqlite3.Connection) -> None:
    """Each attempt keeps the per-epoch record its training child reported, and the epoch whose
    weights were kept; older attempts have none."""
    db.execute("ALTER TABLE attempts ADD COLUMN history TEXT NOT NULL DEFAULT '[]'")
    db.execute("ALTER TABLE attempts ADD COLUMN best_epoch INTEGER")


def attempts_record_the_cpu(db: sqlite3.Connection) -> None:
    """Each attempt names the CPU model and the instruction-set flags of the machine that graded
    it, so results from different machines can be told apart; older attempts say nothing."""
    db.execute("ALTER TABLE attempts ADD COLUMN cpu TEXT NOT NULL DEFAULT ''")


def attempts_keep_class_results(db: sqlite3.Connection) -> None:
    """Each attempt keeps its confusion matrices and per-class accuracies (train and test), so
    reports render from the store; older attempts have none."""
    db.execute("ALTER TABLE attempts ADD COLUMN confusion TEXT NOT NULL DEFAULT '{}'")
    db.execute("ALTER TABLE attempts ADD COLUMN class_accuracy TEXT NOT NULL DEFAULT '{}'")


def attempts_keep_contract_checks(db: sqlite3.Connection) -> None:
    """Each attempt keeps the contract checks its child ran and which passed."""
    db.execute("ALTER TABLE attempts ADD COLUMN checks TEXT NOT NULL DEFAULT '[]'")


def attempts_have_a_kind(db: sqlite3.Connection) -> None:
    """A row is a student's submission or a reference row (a baseline), never ranked."""
    db.execute("ALTER TABLE attempts ADD COLUMN kind TEXT NOT NULL DEFAULT 'student'")


def students_keep_their_metadata(db: sqlite3.Connection) -> None:
    """What each student's student.toml said at the last run (pseudonym, lateness, ...)."""
    db.execute(
        """CREATE TABLE students (
            student TEXT PRIMARY KEY,
            meta TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )"""
    )


def attempts_keep_audit_figures(db: sqlite3.Connection) -> None:
    """The integrity audit's figures; rows graded before it have none."""
    for column in ("agreement", "perturbed_drop", "holdout_accuracy"):
        db.execute(f"ALTER TABLE attempts ADD COLUMN {column} REAL")


def attempts_grade_several_seeds(db: sqlite3.Connection) -> None:
    """A row's seeds and spread; each seed's own result kept apart, to be reused and resumed."""
    db.execute("ALTER TABLE attempts ADD COLUMN seeds TEXT NOT NULL DEFAULT '[]'")
    db.execute("ALTER TABLE attempts ADD COLUMN test_accuracy_std REAL")
    db.execute(
        """CREATE TABLE seed_attempts (
            id INTEGER PRIMARY KEY,
            student TEXT NOT NULL,
            assignment TEXT NOT NULL,
            seed INTEGER NOT NULL,
            reuse_key TEXT NOT NULL,
            result TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX seed_attempts_lookup ON seed_attempts (student, assignment, seed)")


def attempts_verify_submitted_weights(db: sqlite3.Connection) -> None:
    """--mode verify: the submitted weights' test accuracy beside the retrained one."""
    db.execute("ALTER TABLE attempts ADD COLUMN submitted_accuracy REAL")


def slurm_tasks_are_remembered(db: sqlite3.Connection) -> None:
    """Each seed of a submission handed to Slurm is remembered with its job id, its submitit
    folder and the reuse key it is graded under, until its result is recorded (or it is
    abandoned), so a new grader collects what an interrupted one left running instead of
    grading it again."""
    db.execute(
        """CREATE TABLE slurm_tasks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER REFERENCES runs (id),
            student TEXT NOT NULL,
            assignment TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            spec_digest TEXT NOT NULL,
            data_checksum TEXT NOT NULL,
            grader_version TEXT NOT NULL,
            mode TEXT NOT NULL,
            torch_version TEXT NOT NULL,
            device TEXT NOT NULL,
            seeds TEXT NOT NULL,
            seed INTEGER NOT NULL,
            job_id TEXT NOT NULL,
            folder TEXT NOT NULL,
            submitted_at TEXT NOT NULL,
            closed_at TEXT,
            closed_by TEXT
        )"""
    )
    db.execute("CREATE INDEX slurm_tasks_open ON slurm_tasks (student, assignment, closed_at)")


def attempts_name_their_holdout(db: sqlite3.Connection) -> None:
    """Which private hold-out a row was scored on; rows graded before say none."""
    db.execute("ALTER TABLE attempts ADD COLUMN holdout TEXT NOT NULL DEFAULT ''")


def attempts_say_where_a_job_stopped(db: sqlite3.Connection) -> None:
    """Where a timed-out or out-of-memory job was; rows graded before do not say."""
    db.execute("ALTER TABLE attempts ADD COLUMN stage TEXT NOT NULL DEFAULT ''")


def attempts_keep_each_seeds_figures(db: sqlite3.Connection) -> None:
    """A row graded on several seeds keeps each seed's own figures beside their means; rows
    stored before have none (and their confusion matrices are their first seed's)."""
    db.execute("ALTER TABLE attempts ADD COLUMN per_seed TEXT NOT NULL DEFAULT '[]'")


def attempts_keep_diagnostic_figures(db: sqlite3.Connection) -> None:
    """What the diagnosis reads besides the scores: the model's agreement with itself, the share
    of outputs that changed when predicted again, the share that were already probabilities,
    and the loss, scheduler and weight decay training used."""
    db.execute("ALTER TABLE attempts ADD COLUMN self_agreement REAL")
    db.execute("ALTER TABLE attempts ADD COLUMN changed_outputs REAL")
    db.execute("ALTER TABLE attempts ADD COLUMN probability_outputs REAL")
    db.execute("ALTER TABLE attempts ADD COLUMN loss TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE attempts ADD COLUMN scheduler TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE attempts ADD COLUMN weight_decay REAL")


def runs_say_whom_and_why(db: sqlite3.Connection) -> None:
    """A run that regraded some students only (`--only`) names them, and a run may say why it
    was started (`--reason`, e.g. a regrade request); runs before say neither."""
    db.execute("ALTER TABLE runs ADD COLUMN only_students TEXT")  # a JSON list; NULL: everyone
    db.execute("ALTER TABLE runs ADD COLUMN reason TEXT NOT NULL DEFAULT ''")


def attempts_keep_what_training_said(db: sqlite3.Connection) -> None:
    """The training child's own training accuracy, the student's own HPARAMS keys and the
    warnings about them; rows graded before have none."""
    db.execute("ALTER TABLE attempts ADD COLUMN trained_accuracy REAL")
    db.execute("ALTER TABLE attempts ADD COLUMN own_hparams TEXT NOT NULL DEFAULT '{}'")
    db.execute("ALTER TABLE attempts ADD COLUMN hparam_warnings TEXT NOT NULL DEFAULT '[]'")


def attempts_keep_test_predictions(db: sqlite3.Connection) -> None:
    """Each graded seed's predicted test classes, packed, for copy detection; rows graded
    before have none and are compared by their code alone."""
    db.execute("ALTER TABLE attempts ADD COLUMN test_predictions TEXT NOT NULL DEFAULT '{}'")


def similar_pairs_are_kept(db: sqlite3.Connection) -> None:
    """The pairs of submissions copy detection last found alike, per assignment: each pair's
    files by content hash, so a resubmission is not named by its old file's pair."""
    db.execute(
        "CREATE TABLE similar_pairs ("
        "assignment TEXT NOT NULL, student_a TEXT NOT NULL, hash_a TEXT NOT NULL, "
        "student_b TEXT NOT NULL, hash_b TEXT NOT NULL, code_similarity REAL, "
        "error_consistency REAL, shared_wrong REAL, verdict TEXT NOT NULL, "
        "reviewed INTEGER NOT NULL, found_at TEXT NOT NULL, "
        "PRIMARY KEY (assignment, student_a, student_b))"
    )


def base_files_keep_their_predictions(db: sqlite3.Connection) -> None:
    """The predictions of the starter's own model (a spec's base file, graded when copy
    detection needs it to explain two students' alike mistakes), by the file's hash."""
    db.execute(
        "CREATE TABLE base_predictions ("
        "assignment TEXT NOT NULL, file TEXT NOT NULL, content_hash TEXT NOT NULL, "
        "data_checksum TEXT NOT NULL, grader_version TEXT NOT NULL, "
        "test_predictions TEXT NOT NULL, graded_at TEXT NOT NULL, "
        "PRIMARY KEY (assignment, file, content_hash, data_checksum, grader_version))"
    )


MIGRATIONS: list[Migration] = [
    ("create_v1_schema", create_v1_schema),
    ("attempts_know_their_run", attempts_know_their_run),
    ("attempts_keep_training_history", attempts_keep_training_history),
    ("attempts_record_the_cpu", attempts_record_the_cpu),
    ("attempts_keep_class_results", attempts_keep_class_results),
    ("attempts_keep_contract_checks", attempts_keep_contract_checks),
    ("attempts_have_a_kind", attempts_have_a_kind),
    ("students_keep_their_metadata", students_keep_their_metadata),
    ("attempts_keep_audit_figures", attempts_keep_audit_figures),
    ("attempts_grade_several_seeds", attempts_grade_several_seeds),
    ("attempts_verify_submitted_weights", attempts_verify_submitted_weights),
    ("slurm_tasks_are_remembered", slurm_tasks_are_remembered),
    ("attempts_name_their_holdout", attempts_name_their_holdout),
    ("attempts_say_where_a_job_stopped", attempts_say_where_a_job_stopped),
    ("attempts_keep_each_seeds_figures", attempts_keep_each_seeds_figures),
    ("attempts_keep_diagnostic_figures", attempts_keep_diagnostic_figures),
    ("runs_say_whom_and_why", runs_say_whom_and_why),
    ("attempts_keep_what_training_said", attempts_keep_what_training_said),
    ("attempts_keep_test_predictions", attempts_keep_test_predictions),
    ("similar_pairs_are_kept", similar_pairs_are_kept),
    ("base_files_keep_their_predictions", base_files_keep_their_predictions),
]
LATEST = len(MIGRATIONS)


class NewerStoreError(Exception):
    """The store was written by a newer grader: its schema is past the last migration here."""


def version(db: sqlite3.Connection) -> int:
    """How many migrations this store has had (0 for a new, empty file)."""
    has_meta = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def upgrade(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this store lacks; return their names. db must be in autocommit mode
    (isolation_level None): each migration commits on its own, so a crash loses at most one."""
    applied: list[str] = []
    while True:
        db.execute("BEGIN IMMEDIATE")  # another grader may be upgrading the same store
        try:
            current = version(db)
            if current > LATEST:
                raise NewerStoreError(f"schema version {current}; this grader knows up to {LATEST}")
            if current == LATEST:
                db.execute("COMMIT")
                return applied
            name, migrate = MIGRATIONS[current]
            migrate(db)
            _record(db, current + 1, name)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        applied.append(name)


def _record(db: sqlite3.Connection, new_version: int, name: str) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS migrations "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO migrations VALUES (?, ?, ?)",
        (new_version, name, datetime.now(UTC).isoformat(timespec="seconds")),
    )
    db.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(new_version),),
    )
