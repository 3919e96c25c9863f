"""Every message of the console has its Chinese translation (the default
language): a template or code change that adds a message without one fails here.
Run `make catalogues` and translate the new entries."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from fieldledger.api.console import i18n

CONSOLE = Path(i18n.__file__).parent


def extracted() -> set[str]:
    found = extract_from_dir(
        str(CONSOLE),
        method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
        keywords={"_": None, "N_": None},
    )
    return {message for _file, _line, message, _comments, _context in found}


def test_every_console_message_has_a_chinese_translation() -> None:
    messages = extracted()
    assert "Sign in" in messages and "red" in messages  # the extraction sees both kinds
    zh = i18n.translations("zh")
    untranslated = sorted(m for m in messages if zh.gettext(m) == m)
    assert untranslated == []


def test_english_is_the_source_and_chinese_the_default() -> None:
    assert i18n.language_of(None) == "zh"
    assert i18n.language_of("fr") == "zh"
    assert i18n.gettext_for("en")("Sign in") == "Sign in"
    assert i18n.gettext_for("zh")("Sign in") == "登录"
    assert i18n.gettext_for("zh")("Done: %(command)s.", command="派单") == "已完成\uff1a派单\u3002"
