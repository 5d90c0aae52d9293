"""aggregator: pull news feeds, drop duplicates, tag them and republish curated feeds.

The package follows the path an item travels:
config -> schedule -> fetch -> parse -> normalize -> language -> tagging -> dedupe ->
storage -> select -> render -> publish -> serve, with `ingest` owning the order and `cli`
wiring commands to it (README, "How the code is laid out").
"""

import os

__version__ = "0.1.0"

# numpy serves only element-wise hashing here (near-duplicate keys), never linear algebra;
# its OpenBLAS starts a thread pool at import whose threads spin ~0.1 s of CPU each, in
# every process that imports it. Before any numpy import; a setting of the user's wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> int:
    """The `aggregator` console script. The CLI is imported only when called: a parse
    worker (multiprocessing's spawn) re-runs the script that started its parent, and with
    `aggregator.cli.main` imported at the top it loaded the whole program (aiohttp, the store,
    the renderers) before its first document: +0.13-0.5 s on a bench pass. `--version`
    alone is answered here: the CLI's imports (0.15 s) would be its whole cost."""
    import sys

    if (sys.argv[1:] if argv is None else argv) == ["--version"]:
        print(f"aggregator {__version__}")
        return 0
    from aggregator.cli.main import main as cli_main

    return cli_main(argv)
