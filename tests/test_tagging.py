from pathlib import Path

import pytest

from aggregator.config.load import load
from aggregator.model import TagRule
from aggregator.tagging import Tagger, fold, is_acronym

ROOT = Path(__file__).resolve().parent.parent


def tags(rules, text, categories=(), source_tags=()):
    return {m.tag for m in Tagger(tuple(rules)).tag_text(text, categories, source_tags, "src")}


AI = TagRule("ai", keywords=("AI", "IA", "intelligence artificielle"))
TALENT = TagRule("talent", keywords=("debauchage", "talent war"))
META = TagRule("meta", keywords=("Meta",), exclude=("meta-analysis",))
SEC = TagRule("regulation", keywords=("SEC", "ETF"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L'IA générative progresse", {"ai"}),
        ("L’IA générative progresse", {"ai"}),
        ("J'ai vu un film, j'ai aimé", set()),
        ("AI labs hire", {"ai"}),
        ("Said the chair", set()),
        ("Une intelligence artificielle", {"ai"}),
        ("INTELLIGENCE ARTIFICIELLE", {"ai"}),
        ("Intélligence Artificielle", {"ai"}),
        ("FAIR and OpenAI", set()),  # AI inside a word is not AI
    ],
)
def test_acronyms_match_only_in_capitals_and_whole_words(text, expected):
    assert tags([AI], text) == expected


def test_accents_and_case_are_ignored_for_ordinary_keywords():
    assert tags([TALENT], "Le débauchage orchestré par Meta") == {"talent"}
    assert tags([TALENT], "LE DÉBAUCHAGE") == {"talent"}
    assert tags([TALENT], "The Talent   War heats up") == {"talent"}  # phrase across spaces
    assert tags([TALENT], "talented people") == set()


def test_meta_is_not_metavers_and_exclude_vetoes():
    assert tags([META], "Meta mise sur Llama") == {"meta"}
    assert tags([META], "Le métavers est de retour") == set()
    assert tags([META], "A meta-analysis of Meta studies") == set()


def test_exclude_in_title_vetoes_only_when_the_title_says_it():
    """A listing whose text quotes share prices is a funding story: the title decides."""
    markets = TagRule("markets", keywords=("shares",), exclude_in_title=("IPO", "lays off"))
    assert tags([markets], "Kraken prices its IPO\nShares open at $41") == set()
    assert tags([markets], "Kraken shares jump 30%\nA year after its IPO") == {"markets"}
    assert tags([markets], "Exchange lays off 10%\nas shares slump") == set()
    vetoes: list[str] = []
    Tagger((markets,)).tag_text("Kraken prices its IPO\nShares open at $41", vetoes=vetoes)
    assert vetoes == ['markets: "IPO" in the title']


def test_sec_is_not_sec():
    assert tags([SEC], "The SEC delays an ETF") == {"regulation"}
    assert tags([SEC], "Un vin sec et un temps sec") == set()


def test_patterns_categories_implies_and_source_tags():
    openai = TagRule("openai", patterns=(r"\bGPT-\d",), categories=("OpenAI",), implies=("ai",))
    ai = TagRule("ai", keywords=("AI",), implies=("tech",))
    tech = TagRule("tech")
    rules = [openai, ai, tech]
    assert tags(rules, "gpt-5 is out") == {"openai", "ai", "tech"}
    assert tags(rules, "nothing here", categories=("openai",)) == {"openai", "ai", "tech"}
    assert tags(rules, "nothing", source_tags=("crypto",)) == {"crypto"}


def test_star_matches_word_endings():
    rule = TagRule("stablecoins", keywords=("stablecoin*",))
    assert tags([rule], "New stablecoins rules") == {"stablecoins"}
    assert tags([rule], "Stablecoin") == {"stablecoins"}
    assert tags([rule], "unstablecoin") == set()


def test_words_are_found_whatever_the_script():
    # Latin-1 text is scanned once with its non-word characters made spaces; text with
    # letters beyond Latin-1 is split into words: both give the same whole-word matches
    assert tags([AI, TALENT], "Le débauchage coûte 5 € à l'IA") == {"ai", "talent"}
    assert tags([AI, TALENT], "Ελλάδα: AI labs hire, débauchage") == {"ai", "talent"}
    assert tags([AI], "Ελλάδα: FAIR labs") == set()
    assert tags([AI], "«AI»") == {"ai"} and tags([AI], "AI²") == set()  # ² is a digit


def test_rules_sharing_words_each_get_their_reasons_in_text_order():
    # all rules are looked up in one pass: a word shared by rules counts for each of them
    llm = TagRule("llm", keywords=("large language model*", "LLM", "model"))
    ai = TagRule("ai", keywords=("model", "AI agent*", "agents"), exclude=("model train",))
    found = Tagger((llm, ai)).tag_text("An LLM, a model: large language models and AI agents")
    reasons = {t: [m.matched for m in found if m.tag == t] for t in ("llm", "ai")}
    assert reasons == {
        "llm": ["LLM", "model", "large language models"],
        "ai": ["model", "AI agents", "agents"],
    }
    vetoed = Tagger((llm, ai)).tag_text("The model  trains in a model train")
    assert {m.tag for m in vetoed} == {"llm"}


def test_reasons_name_the_rule_and_the_text_as_written():
    tagger = Tagger((TALENT, TagRule("openai", keywords=("OpenAI",), implies=("ai",)), AI))
    matches = tagger.tag_text("Le débauchage chez OpenAI", (), ("crypto",), "journal")
    assert ("talent", "keyword", "débauchage") in {(m.tag, m.rule, m.matched) for m in matches}
    reasons = {(m.tag, m.rule, m.matched) for m in matches}
    assert ("ai", "implied", "openai") in reasons
    assert ("crypto", "source", "journal") in reasons


def test_boilerplate_lines_are_not_read():
    rule = TagRule("regulation", keywords=("régulations",))
    disclaimer = "Cet article est publié à titre indicatif. Respectez les régulations locales."
    tagger = Tagger((rule,), (disclaimer,))
    from datetime import UTC, datetime

    from aggregator.model import Item

    now = datetime.now(UTC)
    item = Item(
        source="s",
        key="k",
        uid="u",
        link="",
        canonical="",
        title="Titre",
        summary_html="",
        content_html="<p>Texte.</p><p>" + disclaimer + "</p>",
        published=now,
        updated=now,
    )
    assert tagger.tag(item) == ()


def test_fold_and_acronym_helpers():
    assert fold("Débauchage œuvre") == "Debauchage oeuvre"
    assert is_acronym("SEC") and is_acronym("GPT-4") and not is_acronym("OpenAI")


def test_shipped_rules_compile_and_tag_the_seed():
    config = load(ROOT / "config.toml")
    text = (Path(__file__).parent / "fixtures/seed_fr.txt").read_text(encoding="utf-8")
    tagger = Tagger(config.tags, tuple(config.disclaimers.values()))
    found = {m.tag for m in tagger.tag_text(text)}
    assert {"ai", "openai", "meta", "talent"} <= found
    assert "regulation" not in found  # only the disclaimer speaks of regulations
    assert "crypto" not in found  # "l'écosystème crypto", once in passing
    # from a source that leans to crypto, that word is evidence only in the title or lead:
    # here it is in the closing paragraph of a 3,400-character article about OpenAI
    leaning = tagger.tag_text(text, source="crypto-fr", leans=("crypto",))
    assert "crypto" not in {m.tag for m in leaning}
    title, rest = text.split("\n", 1)
    closing = [line for line in rest.splitlines() if "crypto" in line]
    lead_first = "\n".join([title, *closing, rest])  # the same words, said first
    leaning = tagger.tag_text(lead_first, source="crypto-fr", leans=("crypto",))
    assert ("crypto", "lean", "crypto-fr + crypto") in leaning


def test_an_excerpt_repeated_in_the_content_gives_the_tags_of_reading_it_twice():
    """A summary made of whole lines of the content is read once; any other summary is
    read as well (a partial word at its edge must not lose a match)."""
    from datetime import UTC, datetime

    from aggregator.model import Item, TagRule
    from aggregator.tagging import Tagger

    tagger = Tagger((TagRule("crypto", keywords=("coin", "bitcoin")),))
    now = datetime(2026, 11, 27, tzinfo=UTC)

    def tags(summary: str, content: str):
        html = "".join(f"<p>{line}</p>" for line in content.splitlines())
        item = Item("s", "k", "u", "", "", "Title", f"<p>{summary}</p>", html, now, now)
        return tagger.tag(item)

    lead = "Bitcoin holds steady as coin traders wait"
    content = f"{lead}\nMore on the market."
    assert tags(lead, content) == tagger.tag_text(f"Title\n{lead}\n{content}")
    assert [m.matched for m in tags("coin rally", "A bitcoin rally")] == ["coin", "bitcoin"]


# ---------------------------------------------------------------- context rules (issue 15)


def _tags(tagger: Tagger, text: str, **kw: object) -> set[str]:
    return {m.tag for m in tagger.tag_text(text, **kw)}  # type: ignore[arg-type]


def test_a_name_counts_only_beside_its_context_and_with_its_capital():
    rules = (
        TagRule(
            "anthropic",
            keywords=("Anthropic",),
            needs_context=("Claude",),
            context=("model", "AI", "chatbot*"),
        ),
        TagRule("mistral", needs_context=("Mistral", "mining"), context=("AI", "bitcoin")),
    )
    tagger = Tagger(rules)
    assert _tags(tagger, "Claude Monet's water lilies go on show") == set()
    assert _tags(tagger, "Jean-Claude Mailly rejoint un cabinet de conseil") == set()
    assert _tags(tagger, "Claude gets a new model for coding") == {"anthropic"}
    assert _tags(tagger, "Le mistral souffle: the AI forecast says 110 km/h") == set()  # lower case
    assert _tags(tagger, "Mistral unveils an AI model") == {"mistral"}
    assert _tags(tagger, "MINING rigs for bitcoin") == {"mistral"}  # lower-case names: any case
    (reason,) = tagger.tag_text("Claude gets a new model")
    assert reason == ("anthropic", "name", "Claude + model")


def test_a_name_listed_in_its_own_context_needs_another_word_beside_it():
    """ "Parlement" twice is no rule; "Claude Haiku" is two names of one maker, each the
    other's context (docs/editing.md, needs_context)."""
    rules = (
        TagRule(
            "regulation",
            needs_context=("Parlement", "banque centrale"),
            context=("Parlement", "projet de loi"),
            mentions=0,
        ),
        TagRule("anthropic", needs_context=("Claude", "Haiku"), context=("Haiku", "model")),
    )
    tagger = Tagger(rules)
    assert _tags(tagger, "Au Parlement, le Parlement fête ses 50 ans") == set()
    assert _tags(tagger, "Le Parlement vote le projet de loi") == {"regulation"}
    assert _tags(tagger, "La banque centrale devant le Parlement") == {"regulation"}
    assert _tags(tagger, "Haiku contest: the best haiku of the year") == set()
    assert _tags(tagger, "Claude Haiku now in more regions") == {"anthropic"}
    reasons = {m.matched for m in tagger.tag_text("Claude Haiku now in more regions")}
    assert "Claude + Haiku" in reasons


def test_mentions_ask_for_the_title_or_several_occurrences():
    tagger = Tagger((TagRule("markets", keywords=("rally", "price"), mentions=2),))
    assert _tags(tagger, "Title\nThe phone's price is out.") == set()
    assert _tags(tagger, "Bitcoin rally\nBuyers came back.") == {"markets"}  # in the title
    assert _tags(tagger, "Title\nThe rally went on; the price held.") == {"markets"}  # twice
    assert _tags(tagger, "Title\nA rally, then another rally.") == {"markets"}


def test_a_long_article_needs_more_mentions_and_says_which_were_too_rare():
    """Two mentions make a subject of a summary, not of a long article's fourth paragraph:
    each 600 characters past the first 600 need one more (docs/editing.md, `mentions`)."""
    tagger = Tagger(
        (TagRule("funding", keywords=("raised",), patterns=(r"raised \$\d",), mentions=2),)
    )
    filler = "The chips arrive in spring and the engineers test them. " * 40  # 2,240 chars
    late = "Title\n" + filler + "It raised money once and raised more later."
    rare: list[str] = []
    assert tagger.tag_text(late, rare=rare) == ()
    assert rare == [
        'funding: "raised" (said fewer than 4 times in 2,283 characters, none in the title)'
    ]
    assert _tags(tagger, "Title\nIt raised money once and raised more later.") == {"funding"}
    assert _tags(tagger, "It raised money\n" + filler) == {"funding"}  # the title
    assert _tags(tagger, "Title\n" + "It raised money. " * 5 + filler) == {"funding"}  # often
    # a pattern counts in the title and the lead, not in a long text's closing line
    assert _tags(tagger, "Title\n" + filler + "It raised $5 billion last year.") == set()
    assert _tags(tagger, "Title\nIt raised $5 billion.\n" + filler) == {"funding"}


def test_a_name_said_in_passing_does_not_count():
    """`passing`: "ex-OpenAI", "like bitcoin", "runs on Mistral models" (issue 15)."""
    rules = (
        TagRule(
            "openai",
            keywords=("OpenAI",),
            mentions=2,
            passing=("former *", "ex-*", "anciens d'*", "* alumni"),
        ),
        TagRule(
            "mistral",
            needs_context=("Mistral",),
            context=("models",),
            passing=("runs on *",),
        ),
        TagRule("bitcoin", keywords=("bitcoin",), passing=("like *", "que le *")),
    )
    tagger = Tagger(rules)
    assert _tags(tagger, "Ex-OpenAI trio raise $45M\nThe former OpenAI staff...") == set()
    assert _tags(tagger, "Vigie lève 20 M€\nFondée par d'anciens d’OpenAI.") == set()
    assert _tags(tagger, "OpenAI alumni start a lab\nNothing else.") == set()
    # said in passing once, then as the subject twice: it counts
    text = "Ex-OpenAI staff join\nOpenAI lost three. OpenAI said nothing."
    assert _tags(tagger, text) == {"openai"}
    assert _tags(tagger, "OpenAI ships a model\nIts first.") == {"openai"}  # the title
    assert _tags(tagger, "A bank's chatbot runs on Mistral models\n") == set()
    assert _tags(tagger, "Mistral ships models\n") == {"mistral"}
    assert _tags(tagger, "Cards swing like bitcoin\n") == set()
    assert _tags(tagger, "Plus volatil que le bitcoin ?\n") == set()
    assert _tags(tagger, "Bitcoin falls\nLike gold, it fell.") == {"bitcoin"}
    # what was not counted is said (for `tags` and `explain`)
    said: list[str] = []
    tagger.tag_text("Ex-OpenAI trio raise $45M\nA bank runs on Mistral models.", passing=said)
    assert said == ['openai: "OpenAI"', 'mistral: "Mistral"']


def test_names_listed_after_a_template_and_patterns_are_in_passing_too():
    """ "compares with GPT-5, Claude and Gemini": every rival of the list is a yardstick,
    and a pattern's match ("GPT-5") follows the templates as keywords do."""
    templates = ("compares with *", "built on *", "rivals *")
    rules = (
        TagRule("openai", patterns=(r"\bGPT-?\d",), passing=templates),
        TagRule("anthropic", keywords=("Claude",), passing=templates),
        TagRule("google", keywords=("Gemini",), passing=templates),
    )
    tagger = Tagger(rules)
    assert _tags(tagger, "Lumen-3 compares with GPT-5, Claude and Gemini\n") == set()
    assert _tags(tagger, "Quillio, built on GPT and Claude, raises $14M\n") == set()
    assert _tags(tagger, "A Chinese open model rivals GPT-5\n") == set()
    assert _tags(tagger, "GPT-5 ships\nClaude and Gemini follow.") == {
        "openai",
        "anthropic",
        "google",
    }
    said: list[str] = []
    tagger.tag_text("Our model rivals GPT-5\n", passing=said)
    assert said == ['openai: "GPT-5"']


def test_shipped_markets_rule_wants_a_market_beside_a_price_word():
    """A phone's price, a road crash or a trading app is not a market story; a coin's
    price among traders, or a move told as a percentage in the title, is."""
    config = load(Path(__file__).parent.parent / "config.toml")
    from aggregator.tagging import tagger_for

    tagger = tagger_for(config)
    price = "OpenAI cuts API prices for its flagship model\nPrices fall by 60% for developers."
    assert "markets" not in _tags(tagger, price)
    crash = "Robotaxi crash: regulator probes AI driving software\nThe crash injured two."
    assert "markets" not in _tags(tagger, crash)
    coin = "Bitcoin price slides\nTraders sold as the price of BTC fell below support."
    assert "markets" in _tags(tagger, coin)
    move = "Le mèmecoin CHOU perd 70 % en une journée\nLe jeton avait été lancé sur Solana."
    assert "markets" in _tags(tagger, move)


def test_requires_drops_a_theme_without_its_topic():
    rules = (
        TagRule("crypto", keywords=("bitcoin",)),
        TagRule("openai", keywords=("OpenAI",), implies=("ai",)),
        TagRule("ai"),
        TagRule("regulation", keywords=("lawsuit",), requires=("ai", "crypto")),
    )
    tagger = Tagger(rules)
    assert _tags(tagger, "A lawsuit against a law firm") == set()
    assert _tags(tagger, "A lawsuit over bitcoin") == {"crypto", "regulation"}
    assert _tags(tagger, "OpenAI faces a lawsuit") == {"ai", "openai", "regulation"}  # implied ai
    # a source's own tags stand whatever they require
    assert _tags(tagger, "A lawsuit", source_tags=("regulation",)) == {"regulation"}


def test_a_source_that_leans_needs_evidence_and_an_exclude_still_wins():
    rules = (
        TagRule(
            "crypto",
            keywords=("crypto",),
            context=("wallet", "token"),
            mentions=2,
            exclude=("in-game tokens",),
        ),
    )
    tagger = Tagger(rules)
    lean = {"leans": ("crypto",), "source": "outlet"}
    assert _tags(tagger, "The 10 biggest game releases", **lean) == set()
    assert _tags(tagger, "A wallet drained overnight", **lean) == {"crypto"}
    assert _tags(tagger, "An AI story\nwith one crypto word", **lean) == {"crypto"}
    assert _tags(tagger, "An AI story\nwith one crypto word") == set()  # no lean: mentions=2
    assert _tags(tagger, "Buy in-game tokens for the wallet", **lean) == set()
    (match,) = tagger.tag_text("A wallet drained", source="outlet", leans=("crypto",))
    assert match == ("crypto", "lean", "outlet + wallet")


def test_the_new_keys_are_checked_with_their_place(tmp_path):
    from aggregator.config.load import parse
    from aggregator.errors import ConfigError

    text = (
        '[disclaimer]\nen = "x"\n'
        '[[sources]]\nname = "s"\nurl = "https://s.example/"\nleans = ["cryptoo"]\n'
        '[tags.crypto]\nneeds_context = ["Circle"]\nmentions = 0\nrequires = ["nope"]\n'
    )
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path / "config.toml")
    problems = "\n".join(info.value.problems)
    assert 'config.toml:6: sources["s"].leans[0]: no rule [tags.cryptoo]' in problems
    assert "(did you mean 'crypto'?)" in problems
    assert "config.toml:8: tags.crypto.needs_context: needs a `context` list" in problems
    assert "config.toml:9: tags.crypto.mentions: must be between 1 and 10, got 0" in problems
    assert "config.toml:10: tags.crypto.requires[0]: unknown tag 'nope'" in problems


# ---------------------------------------------------------------- the topic model (issue 15)


def test_a_keyword_said_once_counts_when_the_topic_model_agrees():
    """`mentions = 2` wants a keyword in the title or twice; said once in the text, it
    counts when the model finds the topic likely (AGREES), and only then."""
    from aggregator.topics import AGREES, TopicModel

    rule = TagRule("ai", keywords=("KI",), mentions=2, passing=("ex-*",))
    sure = TopicModel.of("t", {"ai": -3.0}, {"stellen": {"ai": 4.0}})  # 0.73
    unsure = TopicModel.of("t", {"ai": -3.0}, {"stellen": {"ai": 3.5}})  # 0.62
    text = "Aleph Alpha streicht Stellen\nDas KI-Unternehmen baut 60 Stellen ab."
    (match,) = Tagger((rule,), model=sure).tag_text(text)
    assert (match.rule, match.matched) == ("once", "KI + 0.73") and AGREES <= 0.73
    assert Tagger((rule,), model=unsure).tag_text(text) == ()
    assert Tagger((rule,)).tag_text(text) == ()  # no model: the rule's own `mentions`
    # a mention in passing is no keyword said once
    assert Tagger((rule,), model=sure).tag_text("Stellen\nEin ex-KI Team baut Stellen ab.") == ()


def test_the_topic_model_proposes_a_topic_the_rules_miss_and_an_exclude_still_wins():
    from aggregator.topics import PROPOSE, TopicModel

    model = TopicModel.of("t", {"ai": -3.0}, {"chatbot": {"ai": 3.0}, "maker": {"ai": 3.0}})
    rules = (TagRule("ai", keywords=("AI",), exclude=("chatbot maker fair",)),)
    tagger = Tagger(rules, model=model)
    (match,) = tagger.tag_text("The chatbot maker raises money")
    assert match.tag == "ai" and match.rule == "model" and float(match.matched) >= PROPOSE
    assert tagger.tag_text("The chatbot maker fair opens") == ()  # the editor's exclude wins
    assert tagger.tag_text("A maker of chairs") == ()  # 0.5: not sure enough
    # likely (>= EVIDENCE) is enough for a source that leans to the topic
    tagger2 = Tagger(rules, model=TopicModel.of("t", {"ai": -3.0}, {"maker": {"ai": 3.5}}))
    assert tagger2.tag_text("A maker of chairs") == ()
    assert [m.rule for m in tagger2.tag_text("A maker", leans=("ai",))] == ["model"]
    # a topic without a rule of its own is never given
    assert Tagger((), model=model).tag_text("The chatbot maker") == ()


def test_a_leaning_source_s_one_word_is_not_believed_when_the_model_doubts_it():
    """ "crypto" once in an AI story on a crypto outlet made it a crypto story (issue 15)."""
    from aggregator.topics import TopicModel

    rules = (TagRule("crypto", keywords=("crypto",), context=("bitcoin",), mentions=2),)
    model = TopicModel.of(
        "t", {"crypto": 0.0}, {"claude": {"crypto": -4.0}, "bitcoin": {"crypto": 3.0}}
    )
    tagger = Tagger(rules, model=model)
    doubted = "Claude browses the web\nIt will not buy crypto for you."
    assert tagger.tag_text(doubted, leans=("crypto",), source="site") == ()
    # the same word without the model's doubt is evidence enough, as before
    assert Tagger(rules).tag_text(doubted, leans=("crypto",), source="site")
    believed = "Bitcoin miners\nThey sell bitcoin."
    (match,) = tagger.tag_text(believed, leans=("crypto",), source="site")
    assert match.rule == "lean" and match.matched == "site + Bitcoin"


def test_a_theme_the_rules_found_is_dropped_when_the_model_disbelieves_it():
    """A name said in passing ("researchers from OpenAI" hired by Meta) is no OpenAI story:
    the model judges the themes it never gives alone (issue 15)."""
    from aggregator.topics import DISBELIEVES, TopicModel

    rules = (
        TagRule("ai", keywords=("AI",)),
        TagRule("openai", keywords=("OpenAI",), categories=("OpenAI",), implies=("ai",)),
    )
    model = TopicModel.of(
        "t",
        {"ai": 0.0, "openai": 0.0},
        {"meta": {"openai": -5.0}, "chatgpt": {"openai": 3.0}},
        proposes=frozenset({"ai"}),
    )
    tagger = Tagger(rules, model=model)
    doubted: list[str] = []
    # a headline and its summary: JUDGES_FROM words or more, enough for the model to judge
    hired = (
        "Meta hires three OpenAI researchers\nThe three scientists, who worked on the "
        "reasoning team, join the superintelligence group in Menlo Park next month, the "
        "company said, to work on models that reason over long documents."
    )
    assert tagger.tag_text(hired, doubted=doubted) == ()  # nor the `ai` it would imply
    assert doubted == ["openai 0.007"] and DISBELIEVES > 0.007
    # the headline alone is too short to judge: the rules' word stands
    assert {m.tag for m in tagger.tag_text("Meta hires three OpenAI researchers")} == {
        "ai",
        "openai",
    }
    # the model agreeing, or the item's own category saying it, the theme stands
    (match,) = [m for m in tagger.tag_text("OpenAI updates ChatGPT") if m.tag == "openai"]
    assert match.rule == "keyword"
    assert "openai" in {m.tag for m in tagger.tag_text(hired, ("OpenAI",))}
    # said SAID times, a theme is the story's, whatever the model makes of its words
    from aggregator.topics import SAID

    padding = " Meta said more." * 8  # long enough to judge
    long = "OpenAI and Meta\n" + "OpenAI hires. " * (SAID - 1) + padding
    assert "openai" in {m.tag for m in tagger.tag_text(long)}
    assert "openai" not in {
        m.tag
        for m in tagger.tag_text("OpenAI and Meta\n" + "OpenAI hires. " * (SAID - 2) + padding)
    }
    # a topic the model may give alone is never doubted, nor anything with the model off
    assert [m.tag for m in tagger.tag_text("Meta AI")] == ["ai"]
    assert {m.tag for m in Tagger(rules).tag_text(hired)} == {"ai", "openai"}


def test_the_shipped_model_loads_and_the_switch_turns_it_off(tmp_path):
    from aggregator.config.load import parse
    from aggregator.tagging import compile_rules
    from aggregator.topics import load

    model = load()
    assert model.proposes == {"ai", "crypto"}  # it may give the topics alone
    assert {"markets", "regulation", "openai", "bitcoin"} <= set(model.topics)  # it judges these
    scores = model.scores("L'exchange a gelé les retraits, bitcoin et stablecoins en chute")
    assert scores["crypto"] > 0.5 > scores["ai"]
    text = '[disclaimer]\nen = "x"\n[aggregator]\ntopic_model = false\n'
    config = parse(text, tmp_path / "config.toml")
    assert config.settings.topic_model is False
    assert compile_rules((), (), config.settings.topic_model).model is None
    # scoring looks up every word of the text unfiltered: the model holds only the words
    # it was trained on, `tokens` (two letters or more, not a number), so the sum is the same
    assert not [w for w in model.index if len(w) < 2 or w.isdigit()]


def test_rivals_listed_together_are_a_comparison_not_the_subject():
    """`rivals`: "Le Chat, ChatGPT ou Gemini : lequel choisir ?" names three assistants,
    none of them the story; "OpenAI ships GPT-6" still is OpenAI's."""
    rules = (
        TagRule(
            "openai",
            keywords=("ChatGPT", "OpenAI"),
            patterns=(r"\bGPT-?\d",),
            rivals=("google", "mistral"),
        ),
        TagRule("google", keywords=("Gemini",), rivals=("openai", "mistral"), mentions=2),
        TagRule("mistral", keywords=("Le Chat",), rivals=("openai", "google")),
    )
    tagger = Tagger(rules)
    assert _tags(tagger, "Le Chat, ChatGPT ou Gemini : lequel choisir ?\n") == set()
    assert _tags(tagger, "Pick Gemini or ChatGPT as the default assistant\n") == set()
    assert _tags(tagger, "Corvid 2 against GPT-5.1 and Gemini 3\n") == set()
    assert _tags(tagger, "OpenAI ships GPT-6\nGemini lags behind.") == {"openai"}
    said: list[str] = []
    tagger.tag_text("ChatGPT et Gemini arrivent dans Siri\n", passing=said)
    assert said == ['openai: "ChatGPT"', 'google: "Gemini"']


def test_rivals_must_be_tags(tmp_path):
    from conftest import write_config

    from aggregator.errors import ConfigError

    path = write_config(tmp_path, '[tags.a]\nkeywords = ["a"]\nrivals = ["b"]\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert any("tags.a.rivals[0]" in p and "unknown tag 'b'" in p for p in caught.value.problems)


def test_shipped_regulation_wants_a_regulator_beside_police_and_court_words():
    """A fraud ring's investigation and judge are `security` (LABELLING.md's convention);
    the same words beside a regulator or a rule are regulation."""
    config = load(ROOT / "config.toml")
    tagger = Tagger(config.tags, tuple(config.disclaimers.values()))
    ring = "Police dismantle crypto scam ring\nThe investigation found the ring stole bitcoin; a judge jailed two."
    assert "regulation" not in _tags(tagger, ring) and "security" in _tags(tagger, ring)
    sec = "SEC opens investigation into crypto lender\nThe regulator's investigation targets its bitcoin loans."
    assert "regulation" in _tags(tagger, sec)
