"""The runner: the order of the stages for a pull, a pass and a refresh.

pipeline.py  Runner (the HTTP client and the parse workers that pulls share),
             run_pass (every due source once, then refresh) and refresh (re-tag, prune,
             publish): the order, written once; `run --once` and the daemon pull
             through a Runner and only decide when
pull.py      one pull of one source: fetch, prepare, store, the next pull recorded
workers.py   the parse worker processes: parse, normalize, language, tag, fingerprint
stories.py   dedupe and store: the view read, `dedupe.decide`, the intents written
retag.py     stored items kept in step with changed rules and near-duplicate keys
"""
