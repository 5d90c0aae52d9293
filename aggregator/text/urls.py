"""Canonical URLs: the same article reached through different tracking links is one key."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

# Query parameters that only say where a click came from (Miniflux's list, plus common ones).
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "igshid",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "xtor",
        "xtref",
        "_hsenc",
        "_hsmi",
        "hsctatracking",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "rb_clickid",
        "s_cid",
        "ncid",
        "cmpid",
        "ref_src",
        "ref_url",
        "__twitter_impression",
        "_ga",
        "_gl",
        "wt_mc",
        "wt.mc_id",
        "at_medium",
        "at_campaign",
        "guccounter",
        "guce_referrer",
        "guce_referrer_sig",
        "spm",
        "sr_share",
        "ito",
        "itm_source",
        "itm_medium",
        "itm_campaign",
        "pk_campaign",
        "pk_kwd",
        "pk_source",
        "pk_medium",
        "mtm_campaign",
        "mtm_source",
        "mtm_medium",
        "mtm_keyword",
        "campaign_id",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "itm_", "at_", "hsa_", "oly_", "vero_")
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


# Whitespace and controls, dropped as browsers do, and the noncharacters no XML document
# can hold (a published href must be one; surrogates never leave the parser).
_URL_SPACE = re.compile("[\\s\x00-\x1f\ufffe\uffff]+")


def absolute(url: str, base: str) -> str:
    """`url` resolved against `base`; whitespace and characters XML cannot hold dropped."""
    url = _URL_SPACE.sub("", url or "")
    if not url:
        return ""
    try:
        return urljoin(base or "", url)
    except ValueError:
        return url


# Redirectors carry the real address in a parameter (Google's /url?url=, Facebook's l.php?u=)
# or in their path after a `*` or `=` (Yahoo's /RU=...https.../RK=, `https://r.example/x*https://real/`).
REDIRECT_PARAMS = ("url", "u", "q", "to", "target", "dest", "destination", "redirect",
                   "redirect_url", "redirect_uri", "link", "out", "goto", "r")  # fmt: skip
_EMBEDDED = re.compile(r"[*=](https?(?::|%3A)(?://|%2F%2F).+?)(?:/R[KS]=.*)?$", re.IGNORECASE)


def unwrap(url: str) -> str:
    """The address a redirector link leads to, when it says it; else `url` unchanged."""
    if url.find("http", 8) < 0 and url.find("HTTP", 8) < 0:  # no address inside: most links
        return url
    for _ in range(3):  # a redirector wrapped in a redirector: a few levels at most
        try:
            parts = urlsplit(url)
        except ValueError:
            return url
        inner = ""
        if parts.query:
            params = dict(parse_qsl(parts.query))
            inner = next(
                (v for k in REDIRECT_PARAMS if is_web_url(v := params.get(k, "").strip())), ""
            )
        if not inner and (m := _EMBEDDED.search(parts.path)):
            inner = unquote(m.group(1))
            if parts.query and "?" not in inner:
                inner += "?" + parts.query
        if not inner or not is_web_url(inner):
            return url
        url = inner
    return url


def is_web_url(url: str) -> bool:
    """An http(s) URL with a host and no credentials: the only links we republish."""
    try:
        parts = urlsplit(url)
        return (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and not (parts.username or parts.password)
        )
    except ValueError:
        return False


def canonical(url: str) -> str:
    """Lower-case scheme and host, no default port, no fragment, no tracking parameters.

    Path case and the order of the remaining parameters are kept: servers may care.
    Returns "" for anything that is not an http(s) URL.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in DEFAULT_PORTS or not host:
        return ""
    if not host.isascii():  # the idna codec leaves an ASCII name as it is (and is slow)
        with contextlib.suppress(UnicodeError):
            host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path or "/"
    query = (
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not is_tracking_param(k)
        ]
        if parts.query
        else []
    )
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


# ---------------------------------------------------------------- local and private hosts

LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(ip: IP) -> bool:
    """A globally routable address, after unwrapping IPv4 hidden inside IPv6 forms (mapped,
    compatible, 6to4, Teredo, NAT64)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and (ip in _NAT64 or int(ip) >> 32 == 0):  # ::/96, compatible
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None and not is_public(inner):
            return False
    return ip.is_global and not ip.is_multicast


def web_host(url: str) -> str:
    """The host of `url` as a browser reads it (WHATWG URL parsing by ada-url: IPv4 in any
    spelling made dotted, `127.1`, `017700000001`, `%31%32%37.0.0.1`; full-width and
    ideographic dots, circled digits and look-alike letters mapped by IDNA; backslashes
    for slashes, `http:/x`), lower case, IPv6 in brackets; "" when it has none."""
    import ada_url

    try:
        return ada_url.URL(url.strip()).hostname or ""
    except ValueError:
        return ""


def names_local_host(url: str) -> bool:
    """Whether an absolute URL is aimed at a loopback, private, link-local or local-only
    host, however it is spelled: the one check of the fetcher, the hub ping and the
    sanitizer (a reader's request into their own network)."""
    host = web_host(url).rstrip(".")
    if not host:
        return False
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False  # a name: what it resolves to is the fetcher's check
    return not is_public(ip)
