"""The console's languages: Simplified Chinese by default, English by a switch.

Messages are written in English in the templates and code (`_("Sign in")`) and
translated by the gettext catalogue `locales/zh_CN/LC_MESSAGES/messages.po`.
The catalogue is compiled in memory by Babel when the service starts, so a fresh
checkout needs no build step; `make catalogues` re-extracts the messages and
merges them into the catalogue after templates change.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES = Path(__file__).parent / "locales"
LANGUAGES = ("zh", "en")
DEFAULT = "zh"
COOKIE = "fl_lang"
#: The catalogue behind each language (English is the source language).
CATALOGUES = {"zh": "zh_CN"}
#: The `lang` attribute of the page.
HTML_LANG = {"zh": "zh-CN", "en": "en"}


@cache
def translations(language: str) -> gettext.NullTranslations:
    catalogue = CATALOGUES.get(language)
    if catalogue is None:
        return gettext.NullTranslations()
    path = LOCALES / catalogue / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        compiled = read_po(f, locale=catalogue)
    buffer = BytesIO()
    write_mo(buffer, compiled)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def language_of(cookie: str | None) -> str:
    return cookie if cookie in LANGUAGES else DEFAULT


Gettext = Callable[..., str]


def gettext_for(language: str) -> Gettext:
    """`_(message, **values)`: the translation, with `%(name)s` filled from values."""
    found = translations(language)

    def _(message: str, **values: Any) -> str:
        text = found.gettext(message)
        return text % values if values else text

    return _


def N_(message: str) -> str:
    """Marks a message for extraction; translated where it is shown."""
    return message
