"""Stages import only stages before them: the package reads along the path of an item."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "aggregator"

# The stages in the order an item meets them: a module imports only the ones before its
# own (a module is its top-level file or package: `dedupe/decide.py` is `dedupe`).
ORDER = [
    "errors",
    "faults",
    "text",  # the shared text toolkit: URLs, sanitizing, boilerplate (an item's text)
    "model",
    "units",
    "config",
    "schedule",
    "parse",
    "normalize",
    "language",
    "dedupe",
    "topics",
    "tagging",
    "fetch",
    "storage",
    "select",
    "render",
    "publish",
    "ingest",  # the runner: the order of the stages
    "serve",
    "daemon",
    "cli",
]
# Stages that take values and return values: they never import one that does I/O.
PURE = {
    "units",
    "text",
    "config",
    "schedule",
    "parse",
    "normalize",
    "language",
    "dedupe",
    "topics",
    "tagging",
    "select",
    "render",
}
IO = {"fetch", "storage", "publish", "ingest", "serve", "daemon", "cli"}
RUNNER = {"ingest", "daemon", "cli"}  # they decide the order and the when: no stage calls up


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("aggregator.")
        ):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("aggregator."):
                    names.add(alias.name.split(".")[1])
    return names


def _stage(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0].removesuffix(".py")


def test_imports_follow_the_data():
    for path in PKG.rglob("*.py"):
        stage = _stage(path)
        if stage in ("__init__", "__main__"):
            continue
        assert stage in ORDER, f"{stage} has no place in the order: add it to ORDER"
        for imported in _imports(path) - {stage}:
            assert ORDER.index(imported) < ORDER.index(stage), f"{stage} imports {imported}"
            if stage in PURE:
                assert imported not in IO, f"pure {stage} imports I/O {imported}"
            if stage not in RUNNER:
                assert imported not in RUNNER, f"stage {stage} imports the runner {imported}"


def test_story_decisions_read_no_store():
    """dedupe decides from values the runner reads for it (issue 17): it imports neither
    storage nor a driver, so every backend shares one decision."""
    for path in (PKG / "dedupe").rglob("*.py"):
        imported = _imports(path)
        assert not imported & IO, path
        assert "sqlite3" not in path.read_text(), path


def test_the_console_script_imports_no_stage_until_called():
    """Parse workers re-run the script that started their parent (multiprocessing's
    spawn): the script must not load the program on import."""
    import shutil
    import subprocess
    import sys

    import pytest

    script = Path(sys.executable).parent / "aggregator"
    if not script.exists():
        script = Path(shutil.which("aggregator") or "")
    if not script.is_file():
        pytest.skip("the aggregator console script is not installed")
    code = (
        "import runpy, sys;"
        f"runpy.run_path({str(script)!r}, run_name='__mp_main__');"
        "print(sorted(m for m in sys.modules if m.startswith('aggregator.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_version_is_answered_without_loading_the_program():
    """`aggregator --version` took 0.19 s, all of it the CLI's imports (issue 20)."""
    import subprocess
    import sys

    code = (
        "import sys; from aggregator import main; rc = main(['--version']);"
        "print(rc, sorted(m for m in sys.modules if m.startswith('aggregator.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["aggregator 0.1.0", "0 []"], out.stdout


def test_storage_keeps_values_never_the_stories_logic():
    """The store holds what dedupe decides, and never decides (issue 17: store.py imported
    dedupe's types and key index, and the layer order above could not tell)."""
    for path in (PKG / "storage").rglob("*.py"):
        imported = _imports(path)
        assert not imported & {"dedupe", "pipeline", "tagging", "select", "publish"}, path


def test_only_the_sqlite_backend_speaks_sqlite():
    """No `sqlite3` outside the backend: the rest of the program sees the storage port's
    values and `StoreError`, whatever engine is behind it (issue 17)."""
    for path in PKG.rglob("*.py"):
        inside = path.relative_to(PKG).parts
        if inside[:2] == ("storage", "sqlite") or inside == ("storage", "__init__.py"):
            continue  # the backend, and `open_store` choosing it
        assert "sqlite3" not in path.read_text(), path


def test_only_the_postgresql_backend_speaks_psycopg():
    """psycopg is imported by storage/postgres/ alone (and `driver_errors`, once loaded):
    a SQLite install never loads it, and a cron run pays nothing for it."""
    for path in PKG.rglob("*.py"):
        inside = path.relative_to(PKG).parts
        if inside[:2] == ("storage", "postgres") or inside == ("storage", "__init__.py"):
            continue
        assert "psycopg" not in path.read_text(), path
