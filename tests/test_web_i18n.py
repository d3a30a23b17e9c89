"""Every word of the portal exists in French and German (SPEC §8), and the
browser's language picks the page's."""

from __future__ import annotations

import pathlib
import re

import pytest

from controller.web import i18n

TEMPLATES = pathlib.Path(__file__).parent.parent / "controller" / "web" / "templates"


def _used() -> set[str]:
    found = set()
    for path in TEMPLATES.glob("*.html"):
        text = path.read_text()
        found |= set(re.findall(r"_\('((?:[^'\\]|\\.)*)'\)", text))
        found |= set(re.findall(r'_\("([^"]*)"\)', text))
    for path in (TEMPLATES.parent).glob("*.py"):
        found |= set(re.findall(r'words\(\s*"([^"]*)"', path.read_text()))
        found |= set(re.findall(r'words\(\s*\n?\s*"([^"]*)"', path.read_text()))
    # Words the templates translate from a value: a rule's action, a switch's state.
    return {s.replace("\\'", "'") for s in found} | {"allow", "deny", "on", "off"}


def test_every_word_of_the_pages_is_translated():
    used = _used()
    assert len(used) > 80
    assert i18n.missing(used) == []
    for text in used:
        fr, de = i18n.translate(text, "fr"), i18n.translate(text, "de")
        assert fr and de


@pytest.mark.parametrize("header,expected", [("fr-FR,fr;q=0.9", "Se connecter"), ("de-CH,de;q=0.8", "Anmelden"),
                                             ("en-US", "Sign in"), ("ja-JP", "Sign in")])
def test_the_browser_language_chooses_the_page_language(header, expected):
    from controller.store import Store
    from controller.web import create_app

    app = create_app(Store.open(None, warn=False), b"p" * 32)
    html = app.test_client().get("/login", headers={"Accept-Language": header}).get_data(as_text=True)
    assert f"<h1>{expected}</h1>" in html
