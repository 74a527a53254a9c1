"""Email rendering: Jinja2 templates in templates/, HTML with a text part.

A message is two files, `<name>.<locale>.html` and `<name>.<locale>.txt`; the
text file's first line is `Subject: ...`. HTML autoescapes every value (an
account called `<script>` stays text), and layouts inline their CSS because
mail clients ignore style sheets.

Every template sees `locale` and filters that speak it: `day` (a date as
people write it), `plan_name`, `feature_name`, `topic_name` and `plan_adds`
(from playbooks.yml's catalogue), `word(kind)` (a code such as a priority or a
play in words) and `t(key)` for the shared texts of templates/locales/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from csflow.catalogue import Catalogue
from csflow.config import PROJECT_DIR
from csflow.texts import long_date, translator, word

TEMPLATES_DIR = PROJECT_DIR / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


class Renderer:
    def __init__(self, templates_dir: Path = TEMPLATES_DIR, catalogue: Catalogue | None = None):
        self.dir = templates_dir
        self.catalogue = catalogue or Catalogue()
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates_dir),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["money"] = money
        cat = self.catalogue

        def in_locale(function: Any) -> Any:
            return jinja2.pass_context(lambda ctx, value, *args: function(value, ctx["locale"], *args))

        self.env.filters.update(
            day=in_locale(long_date),
            plan_name=in_locale(lambda code, locale: cat.name("plan", code, locale)),
            feature_name=in_locale(lambda code, locale: cat.name("feature", code, locale)),
            topic_name=in_locale(lambda code, locale: cat.name("topic", code, locale)),
            plan_adds=in_locale(cat.adds),
            word=in_locale(lambda code, locale, kind: word(kind, code, locale)),
        )

    def has(self, name: str, locale: str) -> bool:
        return (self.dir / f"{name}.{locale}.html").exists() and (self.dir / f"{name}.{locale}.txt").exists()

    def render(self, name: str, locale: str, context: dict[str, Any]) -> Rendered:
        context = {**context, "locale": locale, "t": translator(locale)}
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
