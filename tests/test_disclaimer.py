from aggregator.render.disclaimer import disclaimer_for, with_disclaimer_html, with_disclaimer_text

EN = "Not investment advice. Do your own research."
FR = "Ceci n’est pas un conseil en investissement. Faites vos recherches."
TEXTS = {"en": EN, "fr": FR}


def test_language_and_fallback():
    assert disclaimer_for("fr", TEXTS, "en") == FR
    assert disclaimer_for("fr-CA", TEXTS, "en") == FR
    assert disclaimer_for("de", TEXTS, "en") == EN
    assert disclaimer_for("", TEXTS, "en") == EN


def test_appended_as_last_paragraph():
    out = with_disclaimer_html("<p>Body</p>", EN)
    assert out == f"<p>Body</p>\n<p>{EN}</p>"
    assert with_disclaimer_html("", EN) == f"<p>{EN}</p>"
    assert with_disclaimer_text("Body", EN) == f"Body\n\n{EN}"


def test_never_twice_even_when_the_site_already_has_it():
    html = (
        "<p>Body</p><p>AVIS DE NON RESPONSABILITÉ</p>"
        "<p>Ceci n'est pas un conseil en investissement. Faites vos recherches.</p>"
    )
    out = with_disclaimer_html(html, FR)
    assert out.count("conseil en investissement") == 1
    assert "AVIS" not in out
    assert out.endswith(f"<p>{FR}</p>")
    text = "Body\nAVIS DE NON RESPONSABILITÉ\nCeci n’est pas un conseil en investissement. Faites."
    assert with_disclaimer_text(text, FR) == f"Body\n\n{FR}"


def test_idempotent():
    once = with_disclaimer_html("<p>Body</p>", EN)
    assert with_disclaimer_html(once, EN) == once
    text_once = with_disclaimer_text("Body", EN)
    assert with_disclaimer_text(text_once, EN) == text_once


def test_html_special_characters_are_escaped():
    assert with_disclaimer_html("", "Risk < reward & more") == "<p>Risk &lt; reward &amp; more</p>"
