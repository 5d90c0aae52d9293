"""What publishers append to an item that is not the item: their disclaimer, WordPress's
"appeared first on", "Read more" and "Sur le même sujet :" tails, share lines.

Cut from the end of the cleaned HTML, block by block, before the text is read: tagging
never reads a site's disclaimer (whatever its wording: it is recognised by its heading or
by what it says, "not investment advice", "conseil en investissement"...), and the
published item ends with our disclaimer alone. Only trailing blocks are cut: a paragraph
in the middle of an article is the article.
"""

from __future__ import annotations

import re

import ahocorasick

from aggregator.text.sanitize import html_to_text

MAX_BLOCK_WORDS = 120  # a longer paragraph is the article's, whatever it says

# A block opening with one of these headings is a disclaimer, whatever follows.
_HEADING = re.compile(
    r"^\W*(?:disclaimer|important notice|risk warning|risk disclosure|avertissement|"
    r"mise en garde|avis de non[- ]responsabilit[eé]|clause de non[- ]responsabilit[eé]|"
    r"non[- ]responsabilit[eé]|haftungsausschluss|aviso legal|isen[cç][aã]o de "
    r"responsabilidade)\b\W*(?:[:：.–—-]|$)",
    re.IGNORECASE,
)
# A short closing block saying one of these is a disclaimer too.
_SAYS = re.compile(
    r"\b(?:not (?:financial|investment) advice|(?:investment|financial) advice|"
    r"do your own research|DYOR|conseils? (?:en investissement|financiers?|d'investissement)|"
    r"recommandations? d'investissement|faites vos propres recherches|"
    r"perte en capital|n'investissez que)\b",
    re.IGNORECASE,
)
_FOOTER = re.compile(
    r"^(?:the post .{1,600} appeared first on .{1,200}|"
    r"(?:l['’]article|cet article|le post) .{1,600} est apparu en premier sur .{1,200}|"
    r"(?:sur le m[eê]me sujet|[àa] lire aussi|lire aussi|voir aussi|related|read also|"
    r"see also|also read|more on this|mehr zum thema|leia tamb[eé]m|veja tamb[eé]m)"
    r"(?:\s*:?|\s*:\s*.{1,200})|"
    r"(?:read more|lire la suite|continue reading|continuer la lecture|en savoir plus|"
    r"learn more)\W*|"
    r"(?:share|partager|partagez)\b.{0,120})$",
    re.IGNORECASE | re.DOTALL,
)
_BLOCK_START = re.compile(r"<(p|div|blockquote|figure|h[1-6]|ul|ol)\b", re.IGNORECASE)
# WordPress writes its footer inline at the end of an excerpt, too
_INLINE_FOOTER = re.compile(
    r"\s*(?:The post|L['’]article) <a\b[^>]*>[^<]{0,600}</a> "
    r"(?:appeared first on|est apparu en premier sur) <a\b[^>]*>[^<]{0,200}</a>\.?\s*$",
    re.IGNORECASE,
)


def is_boilerplate(text: str) -> bool:
    """Whether a closing block's text is a disclaimer, a footer or a share line."""
    text = " ".join(text.split())
    if not text:
        return True
    if len(text.split()) > MAX_BLOCK_WORDS:
        return False
    return bool(_HEADING.match(text) or _SAYS.search(text) or _FOOTER.match(text))


# Cheap first looks (substrings of the lower-cased tail, C-speed): without one of these
# near the end, nothing is boilerplate and the text is left as it is (most items).
_TRIGGERS = (
    "advice", "conseil", "recommandation", "research", "recherches", "dyor", "capital",
    "investissez", "first on", "en premier", "sujet", "lire", "aussi", "related", "read",
    "more", "suite", "continu", "savoir", "share", "partag", "mehr", "leia", "veja",
)  # fmt: skip
_HEADINGS = (
    "disclaimer", "notice", "warning", "disclosure", "avertissement", "mise en garde",
    "responsabilit", "haftung", "aviso", "isen",
)  # fmt: skip
TAIL = 1500  # characters looked at: a few closing blocks and a heading before them
NEAR = 700  # the first look: a closing block that could be boilerplate is shorter
_OPENINGS = ("<p>", "<p ", "<div", "<blockquote", "<figure", "<h1", "<h2", "<h3", "<h4", "<h5",
             "<h6", "<ul", "<ol")  # fmt: skip


def _may_hold_boilerplate(near: str) -> bool:
    """A first look, two Aho-Corasick scans in C (a few us): a heading word anywhere near
    the end, or a trigger word in the last block."""
    last = near[_last_opening(near) :]
    return next(_TRIGGER_WORDS.iter(last), None) is not None or (
        next(_HEADING_WORDS.iter(near), None) is not None
    )


def _automaton(words: tuple[str, ...]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for word in words:
        automaton.add_word(word, word)
    automaton.make_automaton()
    return automaton


def _last_opening(text: str) -> int:
    """Where the last block opens in `text` (0: none), walking back tag by tag."""
    at = len(text)
    while (at := text.rfind("<", 0, at)) >= 0:
        if text.startswith(_OPENINGS, at):
            return at
    return 0


def strip_tail(html: str) -> str:
    """`html` (cleaned, see sanitize.clean_html) without its trailing boilerplate blocks.

    A closing block that is boilerplate goes, then the one before it, and so on; a heading
    alone ("AVIS DE NON RESPONSABILITÉ") takes the short blocks after it along, whatever
    they say."""
    near = html[-NEAR:].lower()
    if not _may_hold_boilerplate(near):
        return html
    tail = html[-TAIL:].lower()
    if "first on" in tail or "en premier" in tail:
        cut = max(0, len(html) - TAIL)
        html = html[:cut] + _INLINE_FOOTER.sub("", html[cut:])
    while True:
        blocks = _closing_blocks(html)
        if not blocks:
            return html
        last = " ".join(html_to_text(html[blocks[-1][0] : blocks[-1][1]]).split())
        if is_boilerplate(last):
            html = html[: blocks[-1][0]].rstrip()
            continue
        if not any(h in html[-TAIL:].lower() for h in _HEADINGS):
            return html
        texts = [" ".join(html_to_text(html[a:b]).split()) for a, b in blocks[:-1]] + [last]
        heading = next(
            (
                n
                for n in range(len(blocks) - 2, -1, -1)
                if _HEADING.match(texts[n])
                and len(texts[n].split()) <= 6
                and sum(len(t.split()) for t in texts[n + 1 :]) <= MAX_BLOCK_WORDS
            ),
            None,
        )
        if heading is None:
            return html
        html = html[: blocks[heading][0]].rstrip()


def _closing_blocks(html: str, most: int = 4) -> list[tuple[int, int]]:
    """(start, end) of the last few whole blocks that end the text, in order; never the
    first block (an item is not all boilerplate)."""
    out: list[tuple[int, int]] = []
    end = len(html.rstrip())
    for m in reversed(list(_BLOCK_START.finditer(html, max(0, end - TAIL), end))):
        if m.start() == 0 or len(out) == most:
            break
        block = html[m.start() : end]
        # a whole block (inside another, its parent's closing tag would follow it)
        tag = m.group(1).lower()
        if not block.lower().endswith(f"</{tag}>") or f"<{tag}" in block[1:].lower():
            break
        out.append((m.start(), end))
        end = len(html[: m.start()].rstrip())
    return out[::-1]


_TRIGGER_WORDS = _automaton(_TRIGGERS)
_HEADING_WORDS = _automaton(_HEADINGS)
