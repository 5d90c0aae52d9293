"""What publishers add around an item is not the item (issue 15, item 5): their disclaimers
and footers are cut, the real description wins, redirectors are unwrapped, and "Also
reported by" never links to the item itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import FeedServer, rss, run_cli, write_config

from aggregator.model import ParsedEntry, ParsedFeed, Source, TagRule
from aggregator.normalize import normalize_entry
from aggregator.parse.feed import parse
from aggregator.tagging import Tagger
from aggregator.text.boilerplate import strip_tail
from aggregator.text.sanitize import clean_html
from aggregator.text.urls import canonical, unwrap

NOW = datetime.now(UTC).replace(microsecond=0)
BODY = "<p>Le ministère publie son rapport annuel sur les finances locales.</p>"


@pytest.mark.parametrize(
    "tail",
    [
        "<p><strong>AVIS DE NON RESPONSABILITÉ :</strong> Les informations publiées ne "
        "constituent en aucun cas un conseil en investissement. Les cryptomonnaies et le "
        "Bitcoin sont des actifs volatils.</p>",
        "<p><strong>AVIS DE NON RESPONSABILITÉ</strong></p><p>Tout autre texte, quelle que "
        "soit sa formulation.</p>",
        "<p><em>Avertissement : les crypto-actifs présentent un risque élevé de perte en "
        "capital.</em></p>",
        "<p>Disclaimer: nothing here is a recommendation. Bitcoin is volatile.</p>",
        "<p>Not financial advice.</p>",
        "<p>The post <a href='https://x.example/a'>A title</a> appeared first on "
        "<a href='https://x.example/'>X</a>.</p>",
        "<p>L'article <a href='https://x.example/a'>Un titre</a> est apparu en premier sur "
        "<a href='https://x.example/'>X</a>.</p>",
        "<p><strong>Sur le même sujet :</strong></p>",
        "<p><a href='https://x.example/'>Read more</a></p><p>Lire la suite</p>",
        "<p>Share this article: X | Facebook | Telegram | Reddit</p>",
        "<p>Partager : X · Facebook · LinkedIn</p><p>Not financial advice.</p>",
    ],
)
def test_a_sites_own_disclaimer_and_footers_are_cut_whatever_their_wording(tail):
    assert strip_tail(clean_html(BODY + tail)) == BODY


def test_only_closing_blocks_are_cut_never_the_article():
    article = (
        "<p>Not financial advice, the regulator says, is what these influencers give.</p>"
        "<p>The watchdog fined three of them on Monday.</p>"
    )
    assert strip_tail(clean_html(article)) == clean_html(article)
    long_paragraph = "<p>" + "The exchange said it gives no investment advice. " * 30 + "</p>"
    assert strip_tail(clean_html(BODY + long_paragraph)) == clean_html(BODY + long_paragraph)
    only = "<p>Not financial advice.</p>"
    assert strip_tail(only) == only  # an item is never all boilerplate
    nested = "<div><p>a</p><p>Not financial advice.</p></div>"
    assert strip_tail(nested) == nested  # never a cut that leaves a tag open


def test_a_disclaimer_mentioning_bitcoin_gives_no_tag():
    source = Source(name="s", url="https://s.example/feed")
    entry = ParsedEntry(
        guid="1",
        link="https://s.example/1",
        title="Les sorties jeux vidéo de la semaine",
        summary="<p>Un RPG et un jeu de course.</p><p><strong>AVIS DE NON RESPONSABILITÉ :"
        "</strong> les cryptomonnaies et le Bitcoin sont des actifs volatils.</p>",
        content="",
        base="https://s.example/",
        published=NOW,
        updated=None,
    )
    feed = ParsedFeed(format="rss20", title="", link="", language="fr", entries=())
    item = normalize_entry(entry, feed, source, NOW)
    assert item is not None and "Bitcoin" not in item.summary_html
    tagger = Tagger((TagRule("bitcoin", keywords=("Bitcoin",)),))
    assert tagger.tag(item) == ()


@pytest.mark.parametrize("fast", [True, False])
def test_the_real_description_wins_over_media_and_empty_elements(fast):
    doc = rss(
        [
            {"title": "A", "link": "https://x.example/a", "description": "Real A."},
            {"title": "B", "link": "https://x.example/b", "description": "Real B."},
        ]
    )
    doc = doc.replace(
        "<description>Real A.</description>",
        '<media:content url="https://x.example/i.jpg"><media:description>Alt text'
        "</media:description></media:content><description>Real A.</description>",
    ).replace(
        "<description>Real B.</description>", "<dc:description/><description>Real B.</description>"
    )
    doc = doc.replace(
        '<rss version="2.0"', '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"'
    )
    if not fast:
        doc = doc.replace(
            "<channel>", '<channel xml:base="https://x.example/">'
        )  # feedparser's path
    parsed = parse(doc.encode(), "https://x.example/feed")
    assert [(e.summary or e.content) for e in parsed.entries] == ["Real A.", "Real B."]


def test_redirectors_are_unwrapped_before_canonical_links():
    real = "https://real.example/story/42"
    for wrapped in (
        f"https://redir.example/c/abc*{real}",
        f"https://www.google.com/url?rct=j&sa=t&url={real}&ct=ga",
        "https://l.facebook.com/l.php?u=https%3A%2F%2Freal.example%2Fstory%2F42&h=x",
        "https://r.search.yahoo.com/_ylt=A/RU=https%3a%2f%2freal.example%2fstory%2f42/RK=2/RS=x",
    ):
        assert canonical(unwrap(wrapped)) == canonical(real), wrapped
    plain = "https://real.example/search?q=bitcoin"
    assert unwrap(plain) == plain


def test_a_wrapped_copy_is_the_same_story_and_also_reported_never_links_to_itself(
    server: FeedServer, tmp_path
):
    story = {
        "title": "Exchange halts withdrawals after a hack",
        "date": NOW - timedelta(hours=1),
        "description": "The exchange halted withdrawals on Tuesday after attackers drained a hot wallet.",
    }
    a = server.add("/a.rss", rss([dict(story, link="https://wire.example/s/1", guid="a1")]))
    b = server.add(
        "/b.rss",
        rss([dict(story, link="https://redir.example/t*https://wire.example/s/1", guid="b1")]),
    )
    c = server.add("/c.rss", rss([dict(story, link="https://wire.example/s/1", guid="c1")]))
    body = "".join(
        f'[[sources]]\nname = "{n}"\nurl = "{u}"\n' for n, u in (("a", a), ("b", b), ("c", c))
    )
    config = write_config(tmp_path, body + '[[feeds]]\nname = "all"\ntitle = "All"\n')
    result = run_cli("--config", str(config), "run", "--once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    items = json.loads((tmp_path / "out" / "all.json").read_text("utf-8"))["items"]
    assert len(items) == 1  # one story: the wrapped link is the plain one
    assert items[0]["url"] == "https://wire.example/s/1"
    assert "Also reported by" not in items[0]["content_html"]  # every copy is this very page
