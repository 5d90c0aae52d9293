"""index.html: every curated feed with subscribe links and autodiscovery, and the sources.

Plain HTML and a few lines of CSS: readable on a phone, no JavaScript, no clock (its
bytes change only when what it shows does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from aggregator.render import FeedDoc

FORMATS = (
    ("rss", "RSS", "application/rss+xml"),
    ("atom", "Atom", "application/atom+xml"),
    ("json", "JSON Feed", "application/feed+json"),
)
STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:0 auto;padding:1rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-bottom:.2rem}section{margin:1.5rem 0}
.meta{color:#666;font-size:.9rem}a{color:#0645ad}ul.links{padding:0;list-style:none}
ul.links li{display:inline;margin-right:1rem}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;font-size:.9rem}
.failing{color:#a00}ol.headlines{padding-left:1.2rem}ol.headlines li{margin:.3rem 0}
""".strip()


@dataclass(frozen=True)
class SourceRow:
    name: str
    title: str
    url: str
    home: str
    status: str  # "ok", "never pulled", or the error class
    items: int
    language: str


def _date(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC")


HEADLINES = 5  # the newest entries of each feed shown on the page


def render_index(
    title: str, docs: list[FeedDoc], sources: list[SourceRow], public_health: bool = False
) -> bytes:
    """The site's page: each feed with its newest headlines and subscribe links, and the
    sources (with their health only when `public_health`: failures are the operator's)."""
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
    ]
    for doc in docs:
        for suffix, label, mime in FORMATS:
            head.append(
                f'<link rel="alternate" type="{mime}" title="{escape(doc.title)} ({label})" '
                f'href="{escape(doc.url(suffix))}">'
            )
    head += [
        '<link rel="outline" type="text/x-opml" title="Sources" href="sources.opml">',
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
    ]
    body = []
    for doc in docs:
        links = "".join(
            f'<li><a href="{escape(doc.url(suffix))}">{label}</a></li>'
            for suffix, label, _ in FORMATS
        )
        count = len(doc.entries)
        state = (
            f"{count} item{'s' if count != 1 else ''} · updated {_date(doc.updated)}"
            if doc.entries
            else "no items yet"
        )
        body += [
            "<section>",
            f"<h2>{escape(doc.title)}</h2>",
            f"<p>{escape(doc.summary)}</p>",
            f'<p class="meta">{state}</p>',
            f'<ul class="links">{links}</ul>',
        ]
        if doc.entries:
            body.append('<ol class="headlines">')
            for e in doc.entries[:HEADLINES]:
                title_html = (
                    f'<a href="{escape(e.link)}">{escape(e.title)}</a>'
                    if e.link
                    else escape(e.title)
                )
                meta = " · ".join(
                    filter(None, (e.source_title, _date(e.published), ", ".join(e.tags)))
                )
                body.append(f'<li>{title_html} <span class="meta">{escape(meta)}</span></li>')
            body.append("</ol>")
        body.append("</section>")
    body += [
        "<section>",
        "<h2>Sources</h2>",
        '<p class="meta">Also as <a href="sources.opml">OPML</a>; the curated feeds as '
        '<a href="feeds.opml">OPML</a>.</p>',
        "<table><thead><tr><th>Source</th><th>Language</th><th>Items</th>"
        + ("<th>Status</th>" if public_health else "")
        + "</tr></thead><tbody>",
    ]
    for s in sources:
        if not public_health and s.status == "disabled":
            continue
        cls = "" if s.status in ("ok", "never pulled") else ' class="failing"'
        name = f'<a href="{escape(s.home)}">{escape(s.title)}</a>' if s.home else escape(s.title)
        status = f"<td{cls}>{escape(s.status)}</td>" if public_health else ""
        body.append(
            f'<tr><td>{name} (<a href="{escape(s.url)}">feed</a>)</td>'
            f"<td>{escape(s.language or '-')}</td><td>{s.items}</td>{status}</tr>"
        )
    body += ["</tbody></table>", "</section>", "</body>", "</html>", ""]
    return "\n".join(head + body).encode("utf-8")
