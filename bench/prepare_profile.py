"""Where a parse worker's time goes: prepare() (parse, normalize, tag, fingerprint) run
in-process on the bench feeds, with the CPU by stage and cProfile's heaviest functions.

    .venv/bin/python bench/prepare_profile.py [--feeds 200] [--items 50] [--top 25]

The workers are separate processes, so `pass_bench.py --profile` sees only the main
process; this is the other half.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from pass_bench import CONFIG, make_feeds  # noqa: E402

from aggregator.config.load import parse as parse_config  # noqa: E402
from aggregator.ingest.workers import prepare  # noqa: E402
from aggregator.model import Fetched  # noqa: E402


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--feeds", type=int, default=200)
    args.add_argument("--items", type=int, default=50)
    args.add_argument("--top", type=int, default=25)
    opts = args.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp)
        make_feeds(site, opts.feeds, opts.items)
        sources = "".join(
            f'[[sources]]\nname = "s{n}"\nurl = "http://127.0.0.1:1/feed{n}.xml"\n'
            for n in range(opts.feeds)
        )
        config = parse_config(CONFIG + sources, site / "config.toml")
        docs = [
            Fetched(
                url=s.url,
                status=200,
                body=(site / f"feed{n}.xml").read_bytes(),
                content_type="application/rss+xml",
            )
            for n, s in enumerate(config.sources)
        ]
    now = datetime.now(UTC)
    boilerplate = tuple(config.disclaimers.values())
    stages: dict[str, float] = {}

    def run() -> None:
        for fetched, source in zip(docs, config.sources, strict=True):
            done = prepare(  # with the topic model when the config has it, as a pass does
                fetched, source, config.tags, boilerplate, now, model=config.settings.topic_model
            )
            for stage, seconds in done.seconds.items():
                stages[stage] = stages.get(stage, 0.0) + seconds

    run()  # warm: imports, compiled rules
    stages.clear()
    started = time.process_time()
    run()
    total = time.process_time() - started
    items = opts.feeds * opts.items
    print(
        f"{opts.feeds} feeds x {opts.items} items: {total:.2f}s CPU, {total / items * 1e6:.0f} us an item"
    )
    print("  by stage: " + ", ".join(f"{k} {v:.2f}s" for k, v in stages.items()))
    profile = cProfile.Profile()
    profile.runcall(run)
    pstats.Stats(profile).sort_stats("tottime").print_stats(opts.top)


if __name__ == "__main__":
    main()
