"""Imported by the fork server (workers.PRELOAD) for its side effect: the language and
topic models loaded once there, before any worker is forked, so that every worker shares
their pages instead of loading its own copy (4 MB and 5 MB a worker)."""

from aggregator.language import _model
from aggregator.topics import load

_model()
load()
