"""config.toml: what editors and operators write.

load.py      read it into `model.Config`, or every problem at once with its line
validate.py  each value checked and typed, problems kept with their place
keys.py      what it may hold: the keys of each table, names, bounds; "did you mean"
place.py     where a key is in the text (tomllib gives no positions)
schema.py    the JSON Schema editors' tools check it against (`aggregator schema`)
edit.py      change it in place keeping comments and layout (`sources add/remove/import`)
"""
