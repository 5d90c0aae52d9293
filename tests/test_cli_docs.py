"""The command lines README gives work as written (issue 16, item 1)."""

from __future__ import annotations

import json
import re
import subprocess
import time

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


def _documented_commands() -> list[tuple[str, str, str]]:
    """Every command line of README's and docs' ```sh blocks: (document, line, the output
    block that follows it, or "")."""
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for m in re.finditer(r"```sh\n(.*?)```\n(?:\n```\n(.*?)```)?", text, re.S):
            lines = [x for x in m.group(1).splitlines() if x.strip()]
            for n, line in enumerate(lines):
                output = m.group(2) if n == len(lines) - 1 and m.group(2) else ""
                found.append((doc.name, line, output))
    return found


def test_every_documented_command_line_runs(server: FeedServer, tmp_path, request):
    """Each command line README and docs/editing.md give runs in a copy of the shipped
    set-up, as written: placeholders (URL, NAME, draft.toml, subscriptions.opml) get real
    values, the daemon and the server are started and stopped. A `tags` line followed by
    its output must print exactly that output (issue 16, item 1)."""
    import signal

    import tomlkit

    feed = server.add(
        "/feed.rss", rss([{"title": "Bitcoin ETF flows", "link": "https://n.example/1"}])
    )
    doc = tomlkit.parse((ROOT / "config.toml").read_text(encoding="utf-8"))
    doc["aggregator"]["allow_private_networks"] = True
    doc["aggregator"]["listen"] = f"127.0.0.1:{_free_port()}"
    # the others serve an empty feed: a failing source's backoff would make `run --once`'s
    # outcome hang on how long the lines before it took (all it pulled failed: exit 1)
    for n, source in enumerate(doc["sources"]):
        source["url"] = feed if n == 0 else server.add(f"/empty{n}.rss", rss([]))
    (tmp_path / "config.toml").write_text(tomlkit.dumps(doc), encoding="utf-8")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "draft.toml").write_text(tomlkit.dumps(doc), encoding="utf-8")
    other = server.add("/other.rss", rss([{"title": "Other", "link": "https://o.example/1"}]))
    (tmp_path / "subscriptions.opml").write_text(
        f'<opml version="2.0"><body><outline type="rss" text="Other" xmlUrl="{other}"/>'
        "</body></opml>"
    )
    values = {
        "explain URL": "explain https://n.example/1",
        "sources add URL [--name N --tags a,b --language fr]": (
            f"sources add {server.add('/new.rss', rss([]))} --name added --tags ai,crypto "
            "--language fr"
        ),
        "sources remove NAME": "sources remove added",
        "refresh NAME": "refresh coindesk",
        "reset NAME": "reset coindesk",
    }
    if any("postgresql://" in line for _, line, _ in _documented_commands()):
        # a real, empty database on the fixture's server stands for the documented one
        values["postgresql://aggregator@/aggregator"] = request.getfixturevalue(
            "postgres"
        ).database()
    ran = 0
    for name, line, output in _documented_commands():
        command = line.split("  #")[0].strip()
        if command.startswith(("make ", "*/15")) or "aggregator" not in command:
            continue  # make: the Makefile's own targets; the cron line has its own test
        for placeholder, value in values.items():
            command = command.replace(placeholder, value)
        if command.endswith((" run", " serve")):  # the daemon and the server: start, stop
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=tmp_path, stderr=subprocess.PIPE, text=True
            )
            time.sleep(3)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0 and "Traceback" not in err, (name, line, err)
            ran += 1
            continue
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, (name, line, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, (name, line, result.stderr)
        if output and " tags " in command:
            assert result.stdout == output, (name, line, result.stdout)
        ran += 1
    assert ran >= 15, ran


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
