"""The `aggregator` command: arguments -> one function per command -> an exit code.

main.py     the parser, the commands, the reports they print
preview.py  what a feed would publish, for `preview` and `tags`
advice.py   what `check` suggests to an editor (near-miss names, empty feeds)
"""
