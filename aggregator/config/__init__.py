"""config.toml: what editors and operators write.

load.py    read and validate it into `model.Config`, every problem at once with its line
schema.py  the JSON Schema editors' tools check it against (`aggregator schema`)
edit.py    change it in place keeping comments and layout (`sources add/remove/import`)
"""
