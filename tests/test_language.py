"""An item's language comes from its text; declarations are evidence (issue 15, item 2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import feedparser
from conftest import FeedServer, rss, run_cli, write_config

from aggregator.language import decide, detect

NOW = datetime.now(UTC).replace(microsecond=0)
FR_TEXT = (
    "La Banque de France s'inquiète de la hausse des fraudes aux cryptomonnaies, qui ont "
    "coûté plusieurs millions d'euros aux épargnants cette année."
)
EN_TEXT = "The central bank warned on Tuesday that crypto fraud cost savers millions this year."
FR_DISCLAIMER = "Cet article ne constitue pas un conseil en investissement."


def test_the_text_outweighs_a_wrong_declaration():
    assert detect(FR_TEXT)[0] == "fr"
    decision = decide(FR_TEXT, declared="en", configured="en")
    assert decision.language == "fr"
    assert decision.reason.startswith("the text reads fr (")
    assert "feed says en" in decision.reason
    assert decide(EN_TEXT, declared="fr", configured="fr").language == "en"
    assert (
        decide(
            "Die Zentralbank warnte am Dienstag vor Betrug mit Kryptowährungen.", "", "fr"
        ).language
        == "de"
    )


def test_an_unsure_text_falls_back_on_the_source_then_the_feed():
    # a couple of proper nouns read as anything: the editor's source language decides
    assert decide("Bitcoin ETF", declared="en", configured="fr") == (
        "fr",
        decide("Bitcoin ETF", "en", "fr").reason,
    )
    assert decide("Bitcoin ETF", declared="en", configured="fr").reason.endswith(
        "the source's language fr"
    )
    assert decide("Bitcoin ETF", declared="pt", configured="").language == "pt"
    assert decide("", declared="", configured="") == ("", "the text is unsure (? 0.00)")


def test_a_mislabelled_feed_and_an_undeclared_item_get_the_disclaimer_of_their_text(
    server: FeedServer, tmp_path
):
    """The trial's case: a French outlet whose feed declares <language>en</language> got the
    English disclaimer and fell out of the French feed."""
    items = [
        {
            "title": "Les cryptomonnaies sous surveillance renforcée en Europe",
            "link": "https://fr.example/1",
            "guid": "fr-1",
            "date": NOW - timedelta(hours=1),
            "description": FR_TEXT,
        }
    ]
    wrong = server.add("/wrong.rss", rss(items, title="Crypto FR", language="en"))
    undeclared = server.add(
        "/none.rss",
        rss(
            [
                dict(
                    items[0], link="https://nolang.example/1", guid="n-1", title="Le bitcoin recule"
                )
            ],
            title="No lang",
        ).replace("<language></language>", ""),
    )
    body = (
        f'[[sources]]\nname = "wrong"\nurl = "{wrong}"\ntags = ["crypto"]\n'
        f'[[sources]]\nname = "undeclared"\nurl = "{undeclared}"\n'
        '[tags.crypto]\nkeywords = ["cryptomonnaies", "bitcoin"]\n'
        '[[feeds]]\nname = "fr"\ntitle = "En français"\nlanguages = ["fr"]\n'
        '[[feeds]]\nname = "en"\ntitle = "In English"\nlanguages = ["en"]\n'
    )
    config = write_config(tmp_path, body)
    result = run_cli("--config", str(config), "run", "--once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    fr = feedparser.parse((tmp_path / "out" / "fr.rss").read_bytes())
    assert {e.link for e in fr.entries} == {"https://fr.example/1", "https://nolang.example/1"}
    for entry in fr.entries:
        assert FR_DISCLAIMER in entry.summary
        assert "investment advice" not in entry.summary.lower()
    assert not feedparser.parse((tmp_path / "out" / "en.rss").read_bytes()).entries
    explained = run_cli("--config", str(config), "explain", "https://fr.example/1", cwd=tmp_path)
    assert explained.returncode == 0, explained.stderr
    assert "language:  fr (the text reads fr (" in explained.stdout
