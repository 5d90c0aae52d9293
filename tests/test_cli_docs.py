"""The command lines README gives work as written (issue 16, item 1)."""

from __future__ import annotations

import json
import re
import subprocess

from conftest import ROOT, FeedServer, rss, run_cli, write_config


def test_readmes_cron_line_runs_as_written(server: FeedServer, tmp_path):
    """`run --once --log-format json` exited 2 ("unrecognized arguments"): global options
    were accepted only before the command."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = [x for x in readme.splitlines() if x.startswith("*/15 * * * *")]
    command = line.split(None, 5)[5].replace("/srv/aggregator", str(tmp_path))
    assert ".venv/bin/aggregator run --once --log-format json" in command
    url = server.add("/a.rss", rss([{"title": "Bitcoin one", "link": "https://a.example/1"}]))
    write_config(tmp_path, f'[[sources]]\nname = "a"\nurl = "{url}"\n')  # ./config.toml
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (tmp_path / "pulls.log").read_text()
    log = (tmp_path / "pulls.log").read_text(encoding="utf-8")
    lines = [json.loads(x) for x in log.splitlines()]  # every line one JSON object
    assert any(p.get("source") == "a" and p.get("new") == 1 for p in lines), log
    (summary,) = [x for x in lines if x.get("event") == "summary"]
    assert (
        summary["new"] == 1 and summary["failed"] == [] and summary["files_written"] == 3
    )  # index and the two OPML


def test_global_options_work_on_either_side_of_the_command(tmp_path):
    config = write_config(tmp_path, "")
    for args in (
        ("check", "--config", str(config)),
        ("--config", str(config), "check"),
        ("status", "-v", "--config", str(config)),
        ("tags", "--log-format", "json", "--config", str(config), "bitcoin"),
        ("sources", "export", "--config", str(config)),
    ):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
    # an option before the command is not overwritten by the command's own default
    wrong = run_cli("--config", str(tmp_path / "missing.toml"), "check")
    assert wrong.returncode == 2 and re.search(r"missing\.toml: cannot read", wrong.stderr)


def test_docs_point_only_to_files_a_clone_has():
    """README and docs link only to files in the repository (issue 16, item 9)."""
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.S)
        links = re.findall(r"\]\(([^)#\s]+)[^)]*\)", text)
        paths = re.findall(r"`((?:[\w.-]+/)+[\w.-]*)`", text)
        for target in links:
            if "://" in target or target.startswith("mailto:"):
                continue
            inside = (doc.parent / target).resolve().is_relative_to(ROOT)
            if not inside or not (doc.parent / target).exists():
                missing.append(f"{doc.name}: link {target}")
        for path in paths:
            if path.startswith("/"):
                continue
            if path.startswith("..") or not any(
                (base / path).exists() for base in (ROOT, ROOT / "aggregator")
            ):
                missing.append(f"{doc.name}: path {path}")
    assert not missing, missing
