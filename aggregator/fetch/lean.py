"""aiohttp, imported without the two SSL contexts it builds for its defaults.

aiohttp (3.10 on) makes a verified and an unverified default context when it is imported:
the system's CA bundle read twice, 60-100 ms of every process that pulls (a cron run of
304s took 0.5 s in all, bench/). Nothing here uses them: every https request passes a
context of its own (`transport.ssl_context`, certifi's bundle; the webhook's, built on its
first delivery). While aiohttp imports, `ssl` hands out bare client contexts instead: a
request that fell back on aiohttp's defaults would fail verification (no CA is loaded),
never pass unverified. Imported first wherever aiohttp is (`# isort: split` keeps it so);
a process that imported aiohttp before (a test) keeps aiohttp's own contexts.
"""

from __future__ import annotations

import ssl
import sys


def _bare_context(*args: object, **kwargs: object) -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA: trusts nothing


def _no_paths(self: ssl.SSLContext) -> None:
    return None


if "aiohttp" not in sys.modules:
    _make = ssl.create_default_context
    ssl.create_default_context = _bare_context
    ssl.SSLContext.set_default_verify_paths = _no_paths  # type: ignore[method-assign]
    try:
        import aiohttp  # noqa: F401
    finally:
        ssl.create_default_context = _make
        del ssl.SSLContext.set_default_verify_paths  # _ssl._SSLContext's shows through again
