"""aggregator: pull news feeds, drop duplicates, tag them and republish curated feeds.

The package follows the path an item travels:
config -> fetch -> parse -> normalize -> dedupe -> tagging -> store -> select -> render
-> publish, with `pipeline` owning the order and `cli` wiring commands to it.
"""

__version__ = "0.1.0"
