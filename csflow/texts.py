"""Words and dates in the reader's language, for email and the workspace alike.

Texts live in templates/locales/<locale>.yml (keys shared; a key missing in a
locale falls back to English); `{name}` in a text is filled in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from typing import Any

import yaml

from csflow.config import PROJECT_DIR

LOCALES_DIR = PROJECT_DIR / "templates" / "locales"


@cache
def all_texts() -> dict[str, dict[str, str]]:
    """locale -> key -> text, read once per process."""
    return {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(LOCALES_DIR.glob("*.yml"))}


@cache
def texts_in(locale: str) -> dict[str, str]:
    """The locale's texts, English where it has none (built once per locale: email renders call it per message)."""
    return {**all_texts()["en"], **all_texts().get(locale, {})}


def translator(locale: str) -> Callable[..., str]:
    """t(key, **values): the locale's text (English where it has none), values filled in."""
    texts = texts_in(locale)

    def t(key: str, **values: Any) -> str:
        return texts[key].format(**values)

    return t


EVENT_TYPE_DRIVER = re.compile(r"log_events_(?P<type>.+)_30d")


def word(kind: str, code: Any, locale: str) -> str:
    """A code's name in words (`priority` `high` -> "High priority"); the code itself when unnamed.

    The churn model's per-event-type drivers (log_events_<type>_30d, one per
    type of the dbt var signal_event_types) share one text naming the type.
    """
    if code is None:
        return ""
    texts = texts_in(locale)
    if f"{kind}_{code}" in texts:
        return texts[f"{kind}_{code}"]
    if kind == "driver" and (match := EVENT_TYPE_DRIVER.fullmatch(str(code))):
        return texts["driver_events_of_type_30d"].format(type=match["type"].replace("_", " "))
    return str(code)


def long_date(value: Any, locale: str) -> str:
    """A date as people write it: 2027年2月1日 in Japanese, 1 February 2027 in English."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = value.date()
    if locale == "ja":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {value:%B} {value.year}"
