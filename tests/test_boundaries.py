"""The layout's rules, checked by tools rather than kept by hand: import contracts (import-linter,
configured in pyproject.toml), process starts only in the sandbox, and a command line that
starts without torch or scikit-learn."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from importlinter.cli import lint_imports
from support.paths import REPO

PACKAGE = REPO / "grader"
# Calls that start or replace processes without the subprocess module.
PROCESS_CALLS = {"system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp"}
PROCESS_PREFIXES = ("exec", "spawn")


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True) == 0


def _process_calls(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = node.attr
            if node.value.id == "os" and (
                name in PROCESS_CALLS or name.startswith(PROCESS_PREFIXES)
            ):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: os.{name}")
    return found


def test_only_the_sandbox_starts_processes() -> None:
    outside = [p for p in PACKAGE.rglob("*.py") if "sandbox" not in p.relative_to(PACKAGE).parts]
    assert [call for path in outside for call in _process_calls(path)] == []
    assert _process_calls(PACKAGE / "sandbox" / "private_view.py")  # the check can see them


SHOW_IMPORTS = textwrap.dedent(
    """
    import json, sys
    from grader.cli import main
    try:
        main(args=sys.argv[1:])
    except SystemExit:
        pass
    heavy = ("torch", "torchvision", "sklearn", "pandas", "matplotlib", "numpy")
    print(json.dumps(sorted(name for name in heavy if name in sys.modules)))
    """
)


def _heavy_imports(*args: str, cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SHOW_IMPORTS, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GRADER_REQUIRE_SANDBOX": ""},
        check=False,
    )
    imported: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return imported


def test_importing_the_command_line_imports_nothing_heavy(tmp_path: Path) -> None:
    assert _heavy_imports("--help", cwd=tmp_path) == []
    assert _heavy_imports("run", "--help", cwd=tmp_path) == []


@pytest.mark.parametrize("command", ["sandbox", "leaderboard"])
def test_sandbox_and_leaderboard_never_import_torch_or_sklearn(
    command: str, tmp_path: Path
) -> None:
    store = tmp_path / "results" / "grades.sqlite"
    store.parent.mkdir()
    shutil.copyfile(REPO / "tests" / "fixtures" / "grades-v1.sqlite", store)
    imported = _heavy_imports(command, cwd=tmp_path)
    assert "torch" not in imported and "sklearn" not in imported, imported
    if command == "leaderboard":
        assert (tmp_path / "results" / "leaderboard.csv").is_file()  # it really ran
