from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from aggregator.config.load import load, parse
from aggregator.errors import ConfigError


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, Path("config.toml"))
    return info.value.problems


MINIMAL = """
[disclaimer]
en = "Not advice."
"""


def test_shipped_config_is_valid_and_rich():
    config = load(ROOT / "config.toml")
    assert len(config.sources) >= 12
    languages = {s.language for s in config.sources}
    assert {"en", "fr"} <= languages
    tags = {t.name for t in config.tags}
    assert {
        "ai",
        "crypto",
        "openai",
        "anthropic",
        "google",
        "meta",
        "nvidia",
        "mistral",
        "bitcoin",
        "ethereum",
        "solana",
        "stablecoins",
        "regulation",
        "funding",
        "talent",
        "infrastructure",
        "security",
        "markets",
    } <= tags
    assert {"ai", "crypto", "ai-x-crypto"} <= {f.name for f in config.feeds}
    assert {"en", "fr"} <= set(config.disclaimers)


def test_defaults_from_the_contract(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(MINIMAL)
    c = load(path)
    s = c.settings
    assert s.database == tmp_path / "aggregator.db"
    assert s.output_dir == tmp_path / "feeds"
    assert (s.interval, s.retention, s.timeout) == (900, 30 * 86400, 20)
    assert (s.max_feed_size, s.concurrency, s.per_host) == (10_000_000, 16, 2)
    assert s.listen == "127.0.0.1:8080" and s.hub == "" and s.allow_private_networks is False
    assert s.base_url == "http://localhost:8080/"
    assert (c.dedupe.window, c.dedupe.similarity) == (72 * 3600, 0.8)
    assert c.default_language == "en"


def test_every_problem_reported_with_line_and_key_path():
    text = """\
[aggregator]
intervall = "15m"
timeout = "soon"
max_feed_size = "ten"

[disclaimer]
en = "Not advice."

[[sources]]
name = "good"
url = "https://example.org/feed"

[[sources]]
name = "Bad Name"
url = "ftp://example.org/feed"
interval = "10x"

[[sources]]
name = "good"
url = "https://example.org/other"
cron = "every minute"

[tags.ai]
keywords = ["AI"]
patterns = ['(unclosed']
implies = ["nope"]

[[feeds]]
name = "f"
title = "F"
any_tags = ["ia"]
sources = ["missing"]
content = "everything"
"""
    found = problems(text)
    expected = [
        "config.toml:2: aggregator.intervall: unknown key (did you mean 'interval'?)",
        "config.toml:3: aggregator.timeout: not a duration",
        "config.toml:4: aggregator.max_feed_size: not a size",
        "config.toml:14: sources[1].name: must be lower-case letters",
        "config.toml:15: sources[1].url: not an http(s) URL",
        "config.toml:16: sources[1].interval: not a duration",
        "config.toml:21: sources[2].cron: not a cron expression",
        "config.toml:25: tags.ai.patterns[0]: regular expression does not compile",
        "config.toml:26: tags.ai.implies[0]: unknown tag 'nope'",
        "config.toml:19: sources[2].name: duplicate name 'good'",
        "config.toml:31: feeds[\"f\"].any_tags[0]: unknown tag 'ia'",
        "config.toml:32: feeds[\"f\"].sources[0]: unknown source 'missing'",
        'config.toml:33: feeds["f"].content: must be "summary" or "full"',
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in found), (prefix, found)
    assert len(found) == len(expected), found


def test_types_and_unknown_sections():
    found = problems(MINIMAL + '[aggregator]\nconcurrency = "8"\n[extra]\nx = 1\n')
    assert any("aggregator.concurrency: must be an integer" in p for p in found)
    assert any(p.startswith("config.toml:6: extra: unknown key") for p in found)


def test_multiline_arrays_do_not_confuse_line_numbers():
    found = problems(MINIMAL + '[tags.ai]\nkeywords = [\n  "AI",\n  "IA",\n]\nimplies = ["x"]\n')
    assert found == ["config.toml:9: tags.ai.implies[0]: unknown tag 'x'"]


def test_syntax_error_has_its_line():
    found = problems('[aggregator]\ninterval = "15m"\nbroken = \n')
    assert len(found) == 1
    assert found[0].startswith("config.toml:3: TOML syntax error")


def test_disclaimer_default_must_exist():
    found = problems('[disclaimer]\ndefault = "de"\nen = "x"\n')
    assert any("disclaimer.default: names 'de'" in p for p in found)


def test_check_command_exit_codes(tmp_path):
    ok = run_cli("--config", str(ROOT / "config.toml"), "check")
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    bad = tmp_path / "config.toml"
    bad.write_text(MINIMAL + '[[sources]]\nname = "x"\nurl = "nope"\n')
    result = run_cli("--config", str(bad), "check")
    assert result.returncode == 2
    assert f"{bad}:6: sources[\"x\"].url: not an http(s) URL: 'nope'" in result.stderr
    missing = run_cli("--config", str(tmp_path / "absent.toml"), "check")
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_config_from_environment(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "env.toml"
    path.write_text(MINIMAL)
    env = dict(os.environ, AGGREGATOR_CONFIG=str(path))
    result = subprocess.run(
        [sys.executable, "-m", "aggregator", "check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and str(path) in result.stdout


# ---------------------------------------------------------------- hostile content (issue 21)

BASE = '[disclaimer]\nen = "x"\n'


def test_no_content_makes_reading_the_config_raise_anything_but_a_config_error(tmp_path):
    """A 100,000-deep array raised RecursionError: check printed a traceback and the
    daemon's watcher died for good."""
    nested = BASE + "y = " + "[" * 100_000 + "]" * 100_000 + "\n"
    with pytest.raises(ConfigError) as info:
        parse(nested, tmp_path / "config.toml")
    assert info.value.problems == [f"{tmp_path / 'config.toml'}: TOML nested too deeply to read"]
    path = tmp_path / "config.toml"
    path.write_text(nested, encoding="utf-8")
    result = run_cli("--config", str(path), "check")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nested too deeply" in result.stdout + result.stderr
    # a byte-order mark some editors write is no problem at all
    assert parse("\ufeff" + BASE, path).default_language == "en"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '[aggregator]\ninterval = "99999999999w"',
            "aggregator.interval: must be between 1s and 30d",
        ),
        ('[aggregator]\ninterval = "1ms"', "aggregator.interval: must be between 1s and 30d"),
        (
            '[aggregator]\nretention = "99999999999w"',
            "aggregator.retention: must be between 1h and",
        ),
        ('[dedupe]\nwindow = "99999999999w"', "dedupe.window: must be between 1m and"),
        ("[notify]\nfailures = 0", "notify.failures: must be at least 1"),
        ('[notify]\nwebhook = "ftp://x"', "notify.webhook: not an http(s) URL: 'ftp://x'"),
        ('[notify]\nhook = "https://x"', "notify.hook"),
        ('[aggregator]\ntimeout = "2h"', "aggregator.timeout: must be between 1s and 10m"),
        ('[aggregator]\nmax_feed_size = "5TB"', "aggregator.max_feed_size: not a size"),
        (
            '[aggregator]\nmax_feed_size = "10GB"',
            "aggregator.max_feed_size: must be between 1KB and 1GB",
        ),
        (
            '[aggregator]\nlisten = "127.0.0.1:99999"',
            "aggregator.listen: the port must be between 1 and 65535",
        ),
        (
            '[[sources]]\nname = "s"\nurl = "https://s.example/"\ninterval = "1ms"',
            'sources["s"].interval: must be between',
        ),
    ],
)
def test_values_that_would_break_a_run_are_refused_with_their_place(tmp_path, line, message):
    with pytest.raises(ConfigError) as info:
        parse(BASE + line + "\n", tmp_path / "config.toml")
    assert any(message in p for p in info.value.problems), info.value.problems


def test_passing_templates_need_one_star_at_an_end():
    found = problems(
        MINIMAL + '[tags.openai]\nkeywords = ["OpenAI"]\npassing = ["former", "a * b", "*"]\n'
    )
    assert any("tags.openai.passing[0]: needs one * for the name" in p for p in found), found
    assert any("tags.openai.passing[1]: needs one * for the name" in p for p in found), found
    assert any("tags.openai.passing[2]: needs words beside the *" in p for p in found), found
