"""The `aggregator` command: arguments -> one function per command -> an exit code.

main.py     the parser; every error -> one line and an exit code
common.py   exit codes, the event loop, times and tables as printed
run.py      check, run, serve, refresh, reset (the summary a pass prints)
status.py   status
sources.py  sources export, import, add, remove
editors.py  preview, tags, explain, schema
preview.py  what a feed would publish, for `preview` and `tags`
advice.py   what `check` suggests to an editor (near-miss names, empty feeds)
"""
