"""What an operator's mistakes print: one line naming the thing and the cause, a sensible
exit code, never a traceback (issue 16, items 3 and 4)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time

from conftest import ROOT, FeedServer, rss, run_cli, run_in_pty, write_config
from test_daemon import free_port, source, wait_for


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_port_in_use_is_one_line_and_the_daemon_starts_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, "")
        text = config.read_text().replace('listen = ""', f'listen = "127.0.0.1:{port}"')
        config.write_text(text)
        started = time.monotonic()
        result = run_cli("--config", str(config), "run", timeout=30)
        assert time.monotonic() - started < 15
    assert result.returncode == 1
    line = one_line(result)
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in line
    assert "`listen` in" in line  # and where to choose another
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_serve_with_a_bad_or_taken_address(tmp_path):
    config = write_config(tmp_path, "")
    bad = run_cli("--config", str(config), "serve", "--listen", "nonsense")
    assert bad.returncode == 2
    assert '--listen must be "host:port"' in one_line(bad) and "nonsense" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("--config", str(config), "serve", "--listen", f"127.0.0.1:{port}")
    assert busy.returncode == 1 and "the port is in use" in one_line(busy)


def test_tags_file_missing_and_stdin(tmp_path):
    config = write_config(tmp_path, "")
    missing = run_cli("--config", str(config), "tags", "--file", str(tmp_path / "missing.txt"))
    assert missing.returncode == 1
    assert one_line(missing).endswith("missing.txt: cannot read: No such file or directory")
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    stdin = subprocess.run(
        [
            sys.executable,
            "-m",
            "aggregator",
            "--config",
            str(ROOT / "config.toml"),
            "tags",
            "--file",
            "-",
        ],
        input="Bitcoin falls below $60,000",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert stdin.returncode == 0, stdin.stderr
    assert "bitcoin" in stdin.stdout


def test_a_database_that_cannot_be_created(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    config = write_config(tmp_path, "")
    config.write_text(config.read_text().replace('"agg.db"', '"afile/agg.db"'))
    result = run_cli("--config", str(config), "run", "--once")
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith("aggregator: cannot use database afile/agg.db") or (
        "cannot use database" in line and "afile" in line
    ), line


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`explain ... | head`: the reader closed the pipe; no BrokenPipeError traceback."""
    config = write_config(tmp_path, "")
    exe = f"{sys.executable} -m aggregator --config {config}"
    result = subprocess.run(
        ["bash", "-c", f"{exe} schema | true; echo ${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.stderr == "" and result.stdout.strip() == "141"


def test_stopping_during_a_pull_logs_one_json_line(server: FeedServer, tmp_path):
    """A pull still running when the stop's grace ends was logged as apscheduler's
    CancelledError traceback: dozens of lines that are not JSON."""

    def slow(handler):
        time.sleep(12)
        handler._send(200, rss([]).encode(), "application/rss+xml", {})

    url = server.add("/slow.rss", b"", handler=slow)
    config = write_config(tmp_path, source("slow", url, interval="1h"), timeout="30s")
    log = tmp_path / "daemon.log"
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aggregator",
                "run",
                "--config",
                str(config),
                "--log-format",
                "json",
            ],
            stderr=out,
            env=env,
        )
        try:
            wait_for(lambda: server.hits("/slow.rss"), what="the pull to start")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    lines = log.read_text().splitlines()
    records = [json.loads(x) for x in lines]  # every line one JSON object
    assert any("pull cancelled" in r["message"] for r in records), lines
    assert not any("exception" in r or "Traceback" in r["message"] for r in records), lines


def test_the_daemon_talks_on_a_terminal(server: FeedServer, tmp_path):
    """`make run` on a terminal showed nothing: its start-up lines and INFO log now show."""
    url = server.add("/a.rss", rss([{"title": "Bitcoin one", "link": "https://a.example/1"}]))
    port = free_port()
    config = write_config(tmp_path, source("a", url, interval="1h"))
    config.write_text(config.read_text().replace('listen = ""', f'listen = "127.0.0.1:{port}"'))
    env = {k: v for k, v in os.environ.items() if k != "AGGREGATOR_CONFIG"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI with the pty as its terminal
        os.execve(
            sys.executable,
            [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
            env,
        )
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"a: 1 new" not in seen:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
    finally:
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = seen.decode("utf-8", "replace")
    assert f"http://127.0.0.1:{port}/" in text, text
    assert "daemon started: 1 source, 0 feeds, database " in text and "agg.db" in text, text
    assert "a: 1 new" in text, text
    assert os.waitstatus_to_exitcode(status) == 0


def test_log_lines_print_above_the_progress_bar_not_over_it(server: FeedServer, tmp_path):
    """On a terminal, a warning logged during `run --once` landed on the progress bar's
    line, the two overwriting each other (issue 16, item 5)."""
    import re

    def slow_fail(handler):
        time.sleep(0.5)
        handler._send(500, b"oops", "text/plain", {})

    bad = server.add("/bad.rss", b"", handler=slow_fail)
    slow = server.add("/slow.rss", b"", handler=slow_fail)
    config = write_config(
        tmp_path,
        f'[[sources]]\nname = "bad"\nurl = "{bad}"\n[[sources]]\nname = "slow"\nurl = "{slow}"\n',
    )
    out = run_in_pty("--config", str(config), "run", "--once", columns=200)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    lines = [x for x in re.split(r"[\r\n]+", text) if x.strip()]
    logged = [x for x in lines if "HTTP 500" in x and ("WARNING" in x or "ERROR" in x)]
    assert logged, lines
    assert not [x for x in lines if "pulling" in x and ("WARNING" in x or "ERROR" in x)], lines


LINES = [
    ["check"],
    ["--config", "x.toml", "check"],
    ["--config", "run", "check"],  # a config file named "run"
    ["--conf", "run", "status", "--json"],  # abbreviated, as argparse allows
    ["--config=run", "run", "--once"],
    ["--log-format=json", "run", "--once", "--all", "--config", "y.toml"],
    ["--log-format", "json", "-v", "serve", "--listen", "127.0.0.1:0"],
    ["sources", "add", "https://x.example/feed", "--name", "x", "--tags", "ai"],
    ["db", "copy", "a.db", "postgresql://h/d"],
    ["tags", "--file", "t.txt"],
    ["refresh", "--all"],
    ["explain", "https://x.example/1", "-v"],
]
FAILING = [
    ["chek"],
    ["--config", "run", "chek"],
    ["--conf"],
    ["run", "--bogus"],
    ["refresh", "a", "--all"],
    ["check", "--help"],
    ["--help", "check"],
    ["sources", "--help"],
    [],
]


def test_the_parser_built_for_one_command_reads_every_line_as_the_whole_one(capsys):
    """`main` builds only the command a line names (4 ms of every start): the line must
    read the same, errors and help included, as with every command built."""
    from aggregator.cli.main import _parser

    for line in LINES:
        assert vars(_parser(line).parse_args(line)) == vars(_parser([]).parse_args(line)), line
    for line in FAILING:
        said = []
        for parser in (_parser(line), _parser([])):
            try:
                parser.parse_args(line)
            except SystemExit as exc:
                said.append((exc.code, capsys.readouterr()))
            else:
                raise AssertionError(f"{line} parsed")
        assert said[0] == said[1], line
