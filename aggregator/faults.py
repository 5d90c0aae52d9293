"""The crash tests' hook: `AGGREGATOR_CRASH=NAME` kills the process at the point of that
name, as a power cut or the OOM killer would (tests/test_reliability.py). Unset, a point
costs one dictionary lookup.

Points: `before-fetch:SOURCE`, `mid-store:SOURCE` (items stored, the pull's unit not
ended), `before-rename:FILE` (a published file written, not yet in place).
"""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("AGGREGATOR_CRASH") == name:
        os.kill(os.getpid(), signal.SIGKILL)
