"""Email rendering: Jinja2 templates in templates/, HTML with a text part.

A message is two files, `<name>.<locale>.html` and `<name>.<locale>.txt`; the
text file's first line is `Subject: ...`. HTML autoescapes every value (an
account called `<script>` stays text), and layouts inline their CSS because
mail clients ignore style sheets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from csflow.config import PROJECT_DIR

TEMPLATES_DIR = PROJECT_DIR / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


class Renderer:
    def __init__(self, templates_dir: Path = TEMPLATES_DIR):
        self.dir = templates_dir
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["money"] = money

    def has(self, name: str, locale: str) -> bool:
        return (self.dir / f"{name}.{locale}.html").exists() and (self.dir / f"{name}.{locale}.txt").exists()

    def render(self, name: str, locale: str, context: dict[str, Any]) -> Rendered:
        text = self.env.get_template(f"{name}.{locale}.txt").render(**context)
        first, _, body = text.partition("\n")
        if not first.startswith("Subject:"):
            raise ValueError(f"templates/{name}.{locale}.txt: the first line must be 'Subject: ...'")
        html = self.env.get_template(f"{name}.{locale}.html").render(**context)
        return Rendered(subject=first.removeprefix("Subject:").strip(), html=html, text=body.lstrip("\n"))


def money(value: Any, currency: str | None = None) -> str:
    if value is None:
        return "-"
    amount = float(value)
    if currency == "JPY":
        return f"¥{amount:,.0f}"
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency or "", "")
    return f"{symbol}{amount:,.2f}" + ("" if symbol or not currency else f" {currency}")
