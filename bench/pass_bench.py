"""A full pass and a pass of 304s, ours against lemon24/reader's update_feeds, same feeds, same run.

    make bench                          # N=200 feeds x M=50 items
    .venv/bin/python bench/pass_bench.py --feeds 2000 --items 50

Generates N WordPress-style feeds (RSS 2.0, content:encoded of a few KB, French and English
text, tracking parameters in links, some stories syndicated across feeds), serves them from
another process on 127.0.0.1 (Python's http.server: Last-Modified and 304s), then runs
`aggregator run --once --all` through the real CLI and reader's `update_feeds(workers=16)` in
its own process, alternately: `--runs` full passes each from an empty store (3; the
machine's speed drifts, so medians), then 3 of our passes of 304s (reader makes its 3 in
each run's process), then one of ours after every feed gained an item (a daemon's usual
pass: documents to parse, most of their items stored). Prints wall times, CPU by stage, items per second, peak memory (the
process and all its descendants: RSS summed, and PSS, which counts the pages workers
share with their fork server once) and the ratios ours/reader.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from measure import Measured, run_measured  # noqa: E402

EN = """bitcoin ether market traders regulators investors exchange token blockchain network
model training compute researchers startup funding valuation chips data centers launch
agents reasoning benchmark open source weights inference security hack wallet stablecoin
policy lawmakers approval review price rally liquidity volume adoption payments custody
the a of to in and for on with by from as at that this it its their new said will has""".split()
FR = """le la les des un une du de et en pour sur avec par dans que qui est sont a été plus
marché bitcoin crypto régulateurs investisseurs plateforme jeton réseau modèle calcul
chercheurs start-up levée de fonds valorisation puces centres de données lancement agents
raisonnement sécurité piratage portefeuille stablecoin politique députés approbation
prix hausse liquidité volume adoption paiements conservation intelligence artificielle""".split()
NAMES = [
    "OpenAI",
    "Anthropic",
    "Google",
    "Meta",
    "Nvidia",
    "Mistral AI",
    "Binance",
    "Coinbase",
    "Tether",
    "Circle",
    "the SEC",
    "l'AMF",
    "BlackRock",
    "Solana",
    "Ethereum",
]


def sentence(rng: random.Random, words: list[str], n: int) -> str:
    body = " ".join(rng.choice(words) for _ in range(n))
    return f"{rng.choice(NAMES)} {body}."


def make_feeds(out: Path, n_feeds: int, n_items: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    wire: list[tuple[str, str]] = []
    for f in range(n_feeds):
        lang, words = ("fr", FR) if f % 3 == 0 else ("en", EN)
        items = []
        for i in range(n_items):
            if wire and rng.random() < 0.1:  # a syndicated story from another outlet
                title, lead = rng.choice(wire[-500:])
            else:
                title = sentence(rng, words, rng.randint(6, 11)).rstrip(".")
                lead = " ".join(sentence(rng, words, rng.randint(12, 20)) for _ in range(3))
                wire.append((title, lead))
            paragraphs = "".join(
                f"<p>{escape(sentence(rng, words, rng.randint(20, 40)))} "
                f'<a href="https://site{f}.example/ref/{i}?utm_source=rss&amp;utm_medium=feed">lien</a></p>'
                for _ in range(6)
            )
            content = f'<p>{escape(lead)}</p>{paragraphs}<figure><img src="/img/{f}-{i}.jpg" alt=""></figure>'
            date = format_datetime(now - timedelta(minutes=f * 7 + i * 37), usegmt=True)
            cats = "".join(
                f"<category>{c}</category>"
                for c in rng.sample(["Bitcoin", "IA", "AI", "Regulation", "Markets", "DeFi"], 3)
            )
            items.append(
                f"<item><title>{escape(title)}</title>"
                f"<link>https://site{f}.example/{i}/?utm_source=rss&amp;utm_campaign=feed&amp;fbclid=x{i}</link>"
                f'<guid isPermaLink="false">https://site{f}.example/?p={i}</guid><pubDate>{date}</pubDate>'
                f"<dc:creator>Author {i % 7}</dc:creator>{cats}"
                f"<description>{escape(lead)}</description>"
                f"<content:encoded><![CDATA[{content}]]></content:encoded></item>"
            )
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"<channel><title>Site {f}</title><link>https://site{f}.example/</link>"
            f"<description>Feed {f}</description><language>{lang}</language>"
            + "".join(items)
            + "</channel></rss>"
        )
        (out / f"feed{f}.xml").write_text(doc, encoding="utf-8")


def add_one_item(site: Path) -> None:
    """Every feed gains a new first item (a copy of its first, under a new guid, title and
    link): a daemon's usual pass, where each changed document lists mostly stored items."""
    for path in site.glob("feed*.xml"):
        doc = path.read_text(encoding="utf-8")
        start, end = doc.index("<item>"), doc.index("</item>") + len("</item>")
        new = doc[start:end].replace("<title>", "<title>New: ", 1)
        new = new.replace("</link>", "&amp;new=1</link>", 1).replace("</guid>", "-new</guid>", 1)
        path.write_text(doc[:start] + new + doc[start:], encoding="utf-8")


# ---------------------------------------------------------------- measuring processes


def run_checked(cmd: list[str], env: dict | None = None) -> Measured:
    """The command's wall seconds and peak memory (it and its descendants, summed)."""
    measured = run_measured(cmd, env)
    if measured.result.returncode != 0:
        sys.stderr.write(measured.result.stderr[-3000:])
        raise SystemExit(f"{cmd[:4]} failed with {measured.result.returncode}")
    return measured


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the two contenders


CONFIG = """
[aggregator]
database = "bench.db"
output_dir = "out"
base_url = "http://localhost:8080/"
retention = "3650d"
timeout = "60s"
concurrency = 16
listen = ""
allow_private_networks = true

[disclaimer]
default = "en"
en = "This article is published for information purposes only and is not investment advice."
fr = "Cet article est publié à titre indicatif et ne constitue pas un conseil en investissement."

[tags.ai]
keywords = ["AI", "IA", "intelligence artificielle", "model", "modèle", "OpenAI", "Anthropic", "Mistral AI"]
categories = ["AI", "IA"]
[tags.crypto]
keywords = ["bitcoin", "crypto", "blockchain", "stablecoin", "token", "jeton", "Binance", "Coinbase"]
categories = ["Bitcoin", "DeFi"]
[tags.regulation]
keywords = ["SEC", "AMF", "regulators", "régulateurs", "lawmakers", "députés", "policy"]
[tags.markets]
keywords = ["market", "marché", "price", "prix", "rally", "hausse", "liquidity"]
implies = ["crypto"]

[[feeds]]
name = "ai"
title = "AI"
any_tags = ["ai"]
[[feeds]]
name = "crypto"
title = "Crypto"
any_tags = ["crypto"]
[[feeds]]
name = "ai-x-crypto"
title = "AI x Crypto"
all_tags = ["ai", "crypto"]
content = "full"
"""

READER_SCRIPT = """
import json, sys, time
from reader import make_reader
db, urls = sys.argv[1], sys.argv[2:]
reader = make_reader(db)
for url in urls:
    reader.add_feed(url)
times = []
for _ in range(1 + NOT_MODIFIED_RUNS):
    t = time.monotonic()
    reader.update_feeds(workers=16, scheduled=False)
    times.append(time.monotonic() - t)
entries = reader.get_entry_counts().total
print(json.dumps({"full": times[0], "not_modified": sorted(times[1:])[len(times[1:]) // 2],
                  "entries": entries}))
"""
# A cron run right after another: a new process, reader's default `scheduled=True` (only
# the feeds due, none of them here), timed from start to exit as cron waits for it.
READER_CRON_SCRIPT = """
import sys
from reader import make_reader
reader = make_reader(sys.argv[1])
reader.update_feeds(workers=16)
reader.close()
"""
CRON_RUNS = 7  # whole processes of a tenth of a second: the median of this many
# A pass of 304s lasts a few tenths of a second: one run says more about the machine's
# other load than about the code. Both sides report the median of this many.
NOT_MODIFIED_RUNS = 3


class Ours:
    """Our CLI on the bench's config: full passes from an empty store, then passes of 304s."""

    def __init__(
        self,
        work: Path,
        urls: list[str],
        profile: Path | None = None,
        profile_304: Path | None = None,
    ):
        self.work, self.profile, self.profile_304 = work, profile, profile_304
        sources = "".join(f'[[sources]]\nname = "s{n}"\nurl = "{u}"\n' for n, u in enumerate(urls))
        (work / "config.toml").write_text(CONFIG + sources, encoding="utf-8")
        # PYTHONDONTWRITEBYTECODE (set on some CI machines and this project's sandbox)
        # would make every run compile our modules again, ~50 ms a process that no cron
        # user pays: bytecode is written by the first run, as on any ordinary machine
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("AGGREGATOR_CONFIG", "PYTHONDONTWRITEBYTECODE")
        }
        self.cmd = [
            *(sys.executable, "-m", "aggregator", "--config", str(work / "config.toml")),
            *("--log-format", "json", "run", "--once", "--all"),
        ]
        self.runs: dict[str, list[dict]] = {
            "full": [],
            "not_modified": [],
            "changed": [],
            "cron": [],
        }

    def full(self) -> None:
        for path in self.work.glob("bench.db*"):
            path.unlink()
        shutil.rmtree(self.work / "out", ignore_errors=True)
        run = self.cmd
        if self.profile is not None and not self.runs["full"]:  # the main process, sampled
            run = [run[0], "-m", "pyinstrument", "-o", str(self.profile), *run[1:]]
        self._run("full", run)

    def not_modified(self) -> None:
        run = self.cmd
        if self.profile_304 is not None and not self.runs["not_modified"]:  # start to exit
            run = [run[0], "-m", "pyinstrument", "-o", str(self.profile_304), *run[1:]]
        self._run("not_modified", run)

    def changed(self) -> None:
        self._run("changed", self.cmd)

    def cron(self) -> None:
        """`run --once` as cron runs it right after a pass: nothing is due."""
        self._run("cron", [c for c in self.cmd if c != "--all"])

    def _run(self, label: str, cmd: list[str]) -> None:
        measured = run_checked(cmd, self.env)
        err = measured.result.stderr
        done = next(json.loads(line) for line in err.splitlines() if '"event": "pass"' in line)
        self.runs[label].append(
            {
                "wall": done["wall"],
                "cli": measured.wall,
                "peak_mb": measured.peak_mb,
                "pss_mb": measured.peak_pss_mb,
                "cpu": done["cpu"],
                "items": done["items"],
                "commits": done.get("commit_wall", 0.0),
            }
        )

    def result(self) -> dict:
        """The median run of each kind (by wall time), with the highest peaks of all."""
        out = {}
        for label, runs in self.runs.items():
            if not runs:
                continue
            by = "cli" if label == "cron" else "wall"  # a cron run's pass is nothing
            median = dict(sorted(runs, key=lambda r: r[by])[len(runs) // 2])
            median["peak_mb"] = max(r["peak_mb"] for r in runs)
            median["pss_mb"] = max(r["pss_mb"] for r in runs)
            median["runs"] = len(runs)
            out[label] = median
        return out


def their_cron(work: Path, db: Path) -> float:
    """reader's cron run right after its last update: the whole process's median wall."""
    script = work / "reader_cron.py"
    script.write_text(READER_CRON_SCRIPT)
    walls = sorted(
        run_checked([sys.executable, str(script), str(db)]).wall for _ in range(CRON_RUNS)
    )
    return walls[len(walls) // 2]


def theirs(work: Path, urls: list[str], n: int) -> dict:
    """reader's full pass and passes of 304s, in a new process on a new database."""
    script = work / "reader_run.py"
    script.write_text(READER_SCRIPT.replace("1 + NOT_MODIFIED_RUNS", str(1 + NOT_MODIFIED_RUNS)))
    db = work / f"reader{n}.sqlite"
    measured = run_checked([sys.executable, str(script), str(db), *urls])
    result = json.loads(measured.result.stdout)
    result["peak_mb"] = measured.peak_mb
    return result


def median_of(runs: list[dict]) -> dict:
    def mid(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return {
        "full": mid([r["full"] for r in runs]),
        "not_modified": mid([r["not_modified"] for r in runs]),
        "entries": runs[0]["entries"],
        "peak_mb": max(r["peak_mb"] for r in runs),
        "runs": len(runs),
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--feeds", type=int, default=200)
    args.add_argument("--items", type=int, default=50)
    args.add_argument("--skip-reader", action="store_true")
    args.add_argument(
        "--runs", type=int, default=3, help="full passes on each side (the median is shown)"
    )
    args.add_argument(
        "--profile",
        type=Path,
        help="write a pyinstrument profile of the full pass's main process to this file "
        "(the parse workers are profiled in-process by bench/prepare_profile.py)",
    )
    args.add_argument(
        "--profile-304",
        type=Path,
        help="write a pyinstrument profile of the first pass of 304s, the whole process from "
        "start to exit (what a cron user waits for), to this file",
    )
    opts = args.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aggregator-bench-"))
    site = work / "site"
    site.mkdir()
    try:
        started = time.monotonic()
        make_feeds(site, opts.feeds, opts.items)
        size = sum(p.stat().st_size for p in site.iterdir()) / 1e6
        print(
            f"{opts.feeds} feeds x {opts.items} items, {size:.1f} MB, generated in "
            f"{time.monotonic() - started:.1f}s; {os.cpu_count()} cores, Python {sys.version.split()[0]}"
        )
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(site),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        urls = [f"http://127.0.0.1:{port}/feed{n}.xml" for n in range(opts.feeds)]
        try:
            # full passes side by side, alternating: the machine's speed drifts over minutes
            ours = Ours(
                work,
                urls,
                opts.profile.resolve() if opts.profile else None,
                opts.profile_304.resolve() if opts.profile_304 else None,
            )
            others = []
            for n in range(opts.runs):
                ours.full()
                if not opts.skip_reader:
                    others.append(theirs(work, urls, n))
            for _ in range(NOT_MODIFIED_RUNS):
                ours.not_modified()
            time.sleep(1.0)  # Last-Modified has one-second steps
            add_one_item(site)
            ours.changed()
            for _ in range(CRON_RUNS):
                ours.cron()
            mine, other = ours.result(), median_of(others) if others else None
            if other is not None:
                other["cron"] = their_cron(work, work / f"reader{opts.runs - 1}.sqlite")
        finally:
            server.terminate()
            server.wait(10)
        report(mine, other)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(mine: dict, other: dict | None) -> None:
    full, nm = mine["full"], mine["not_modified"]
    print(
        f"\naggregator, full pass (median of {full['runs']}): {full['wall']:6.2f}s wall "
        f"({full['cli']:.2f}s with the CLI's start-up), {full['items'] / full['wall']:.0f} "
        f"items/s, peak {full['peak_mb']:.0f} MB RSS summed, {full['pss_mb']:.0f} MB PSS"
    )
    print("  CPU by stage: " + ", ".join(f"{k} {v:.2f}s" for k, v in full["cpu"].items()))
    print(f"  SQLite commits: {full['commits']:.2f}s wall")
    print(
        f"aggregator, pass of 304s (median of {nm['runs']}): {nm['wall']:6.2f}s wall "
        f"({nm['cli']:.2f}s with start-up), peak {nm['peak_mb']:.0f} MB"
    )
    print("  CPU by stage: " + ", ".join(f"{k} {v:.2f}s" for k, v in nm["cpu"].items()))
    if changed := mine.get("changed"):
        print(
            f"aggregator, then every feed gains one item (one run): {changed['wall']:6.2f}s "
            f"wall, {changed['items']} items in the documents"
        )
        print("  CPU by stage: " + ", ".join(f"{k} {v:.2f}s" for k, v in changed["cpu"].items()))
    cron = mine.get("cron")
    if cron:
        print(
            f"aggregator, cron run with nothing due (median of {cron['runs']}): "
            f"{cron['cli']:.3f}s from start to exit, peak {cron['peak_mb']:.0f} MB"
        )
    if other:
        print(
            f"reader 3.x update_feeds(workers=16), median of {other['runs']}: full "
            f"{other['full']:.2f}s, 304s {other['not_modified']:.2f}s (each run's median of "
            f"{NOT_MODIFIED_RUNS}), {other['entries']} entries, peak {other['peak_mb']:.0f} MB"
        )
        print(
            f"\nratio ours/reader: full pass {full['wall'] / other['full']:.2f} (target <= 0.25), "
            f"pass of 304s {nm['wall'] / other['not_modified']:.2f} (target <= 0.5)"
        )
        if cron and "cron" in other:
            print(
                f"cron run with nothing due, whole process: reader {other['cron']:.3f}s, "
                f"ratio {cron['cli'] / other['cron']:.2f} (target <= 0.7 and under 0.150s)"
            )


if __name__ == "__main__":
    main()
