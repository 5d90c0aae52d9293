"""Fast paths held to the plain way of doing the same thing, on generated inputs.

The sanitizer skips ammonia for text without markup and skips its per-attribute filter when
no local address can be spelled; the tagger looks one-word keywords up in the item's word
set instead of scanning with a regex. Each must give what the slow way gives.
"""

from __future__ import annotations

import re

import nh3
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.model import TagRule
from aggregator.tagging import Tagger, fold, is_acronym
from aggregator.text import sanitize
from aggregator.text.sanitize import clean_html, clean_text

PIECES = [
    "<a href=\"", "<img src='", "\">", "'>", "</a>", "<p>", "</p>", "text ", "é", "&amp;",
    "&#49;", "&#x2F;", "&sol;", "&period;", "&lbrack;", "&nbsp;", "http:", "https:", "//",
    "/", "127.0.0.1", "[::1]", "2130706433", "0x7f.1", "localhost", "LOCALHOST", ".local",
    ".internal", "user@", "@", "example.com", "site.example", "\r", "\xa0", "\ufeff", " ",
    "\t", "\n", "1password.com", "mailto:a@b.c", "<", ">", "&", "?", "#", ":8080",
    "&#x27;", "&#39;", "&apos;", "&AMP;", "&QUOT;", "&#x31;", "&#X31;", "\x85", "\x0b", "\u2028",
]  # fmt: skip


def slow_clean(fragment: str, base: str) -> str:
    fragment = clean_text(fragment)
    if not fragment.strip():
        return ""
    return nh3.clean(
        fragment,
        tags=sanitize.ALLOWED_TAGS,
        attributes=sanitize.ALLOWED_ATTRIBUTES,
        attribute_filter=sanitize._no_local_urls,
        url_schemes=sanitize.URL_SCHEMES,
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_relative=("rewrite_with_base", base),
    ).strip()


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
def test_clean_html_fast_paths_give_what_ammonia_gives(fragment: str) -> None:
    base = "https://site.example/feed/"
    assert clean_html(fragment, base) == slow_clean(fragment, base)


def test_local_addresses_are_still_dropped() -> None:
    for url in (
        "http://127.0.0.1/x",
        "http://&#49;27.0.0.1/x",
        "http:&sol;&sol;localhost/",
        "http://user@10.0.0.1/",
        "//[::1]/",
        "http://printer.local/",
        "http://2130706433/",
    ):
        assert "href" not in clean_html(f'<a href="{url}">x</a>', "https://site.example/"), url


WORDS = ["AI", "ai", "IA", "Ia", "l'AI", "J'ai", "SEC", "sec", "bitcoin", "Bitcoins", "Débauchage",
         "debauchage", "intelligence", "artificielle", "Intelligence  Artificielle", "stablecoin",
         "stablecoins", "ETH", "Ethernet", "start-up", "start", "up", "œuvre", "oeuvre", "_ai",
         "ai_", "ai2", "Meta", "métavers", "l’AMF", "l'AMF", "AMF", "x", "—", "«", "»", "\n", "."]  # fmt: skip
KEYWORDS = ["AI", "IA", "SEC", "bitcoin", "débauchage", "intelligence artificielle",
            "stablecoin*", "ETH", "start-up", "œuvre", "Meta", "l'AMF", "ai"]  # fmt: skip


def reference_tags(text: str, keywords: list[str]) -> set[str]:
    """One regex per keyword, as the tagger was first written."""
    folded = fold(text)
    found = set()
    for kw in keywords:
        words = fold(kw.rstrip("*")).split()
        body = r"\s+".join(re.escape(w) for w in words) + (r"\w*" if kw.endswith("*") else "")
        flags = 0 if is_acronym(kw) else re.IGNORECASE
        if re.search(r"(?<!\w)" + body + r"(?!\w)", folded, flags):
            found.add(kw)
    return found


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(WORDS) | st.sampled_from(["", " ", "-", "x"]), max_size=40).map(
        "".join
    ),
    st.lists(st.sampled_from(KEYWORDS), min_size=1, max_size=4, unique=True),
)
def test_word_set_matching_equals_a_regex_per_keyword(text: str, keywords: list[str]) -> None:
    tagger = Tagger(tuple(TagRule(f"t{n}", keywords=(kw,)) for n, kw in enumerate(keywords)))
    got = {keywords[int(m.tag[1:])] for m in tagger.tag_text(text)}
    assert got == reference_tags(text, keywords)


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=st.characters(exclude_categories=()), max_size=40) | st.sampled_from(PIECES)
)
def test_clean_text_fast_accept_equals_both_scans(text: str) -> None:
    slow = sanitize._NOT_XML.sub("", sanitize._C1.sub(sanitize._c1_to_cp1252, text))
    assert clean_text(text) == slow


ACRONYMS = ["AI", "IA", "SEC", "ETH", "AMF", "BTC", "SOL", "XRP", "ETF", "USDT"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(WORDS + ACRONYMS + ["sol", "Eth", "xBTC", "BTCs"])
        | st.sampled_from(["", " ", "-", "x"]),
        max_size=40,
    ).map("".join),
    st.integers(min_value=1, max_value=len(ACRONYMS)),
)
def test_acronyms_searched_one_by_one_or_in_the_word_set_alike(text: str, count: int) -> None:
    keywords = ACRONYMS[:count]  # up to 8 are searched one by one, more in the word set
    matches = Tagger((TagRule("t", keywords=tuple(keywords)),)).tag_text(text)
    assert bool(matches) == bool(reference_tags(text, keywords))
    assert {m.matched for m in matches} <= set(keywords)


def test_a_base_ammonia_refuses_drops_the_relative_links_only() -> None:
    """Cleaners are built once per base: one that ammonia refuses falls back to "deny"."""
    html = '<a href="/x">x</a><a href="https://b.example/y">y</a>'
    for base in ("http://exa mple.com/", "http://[::1", "https://", "file:///etc/"):
        out = clean_html(html, base)
        assert 'href="https://b.example/y"' in out and "/x" not in out, (base, out)
    assert 'href="https://a.example/x"' in clean_html(html, "https://a.example/feed")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.text(), st.text(), st.text()), max_size=6),
    st.lists(st.text(), max_size=4),
)
def test_stored_json_is_what_json_dumps_writes(tags: list, strings: list[str]) -> None:
    """The store writes tags, authors and categories as json.dumps(ensure_ascii=False)
    would, without building an encoder per call."""
    import json

    from aggregator.model import TagMatch
    from aggregator.storage.sqlite.rows import _json_strings, _tags_json

    matches = [TagMatch(*t) for t in tags]
    assert _tags_json(matches) == json.dumps([list(t) for t in tags], ensure_ascii=False)
    assert _json_strings(tuple(strings)) == json.dumps(strings, ensure_ascii=False)
    assert json.loads(_tags_json(matches)) == [list(t) for t in tags]


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=60)
    | st.text(alphabet=st.sampled_from("aéÉçœŒ’½µ¼ßÆ ¨´\xa0\u0301\u202fé€ǅﬁ"), max_size=30)
)
def test_accents_stripped_by_the_latin1_table_as_by_nfkd(text: str) -> None:
    assert sanitize.strip_accents(text) == sanitize._slow_strip_accents(text)


@settings(max_examples=600, deadline=None)
@given(
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=60)
    | st.text(alphabet=st.sampled_from("ab_1 «»°\xa0\u202f€—’'œé²ǅΩ中-\n\t"), max_size=40)
)
def test_word_sets_by_byte_table_equal_the_regex(text: str) -> None:
    from aggregator.tagging import _WORD, words_of

    assert words_of(text) == frozenset(_WORD.findall(text))


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "A",
                "Bc",
                "x",
                "1",
                " ",
                "  ",
                ",",
                ";",
                ")",
                "’",
                "'",
                '"',
                "_",
                "-",
                ".",
                "É",
                "é",
                "\n",
                "Ω",
            ]
        ),
        max_size=40,
    ).map("".join)
)
def test_names_found_as_the_look_behind_regex_finds_them(lead: str) -> None:
    from aggregator.dedupe.similarity import name_spans

    slow = re.compile(r"(?<=[\w,;)’'\"] )[A-Z][\w-]*")
    assert name_spans(lead) == [m.group() for m in slow.finditer(lead)]
