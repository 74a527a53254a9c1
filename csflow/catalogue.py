"""What customers read instead of codes: the plan ladder, and the names of
plans, features and training topics (playbooks.yml, section `catalogue`).

The ladder lists plans lowest first; each plan says what it adds over the one
below, so an upgrade offer can say what the next plan adds, and an account on
the top plan (or on a plan the ladder does not know) is never offered one.
A code the catalogue does not name is shown as written, underscores as spaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from csflow.config import ConfigError

KINDS = ("plan", "feature", "topic")
# What an audience row with a plan also carries (playbooks.yml's `when` may test them).
LADDER_COLUMNS = ("plan_rank", "is_top_plan", "next_plan")


@dataclass(frozen=True)
class Plan:
    code: str
    names: dict[str, str]  # locale -> name
    adds: dict[str, str]  # locale -> what it adds over the plan below


@dataclass(frozen=True)
class Catalogue:
    plans: tuple[Plan, ...] = ()
    features: dict[str, dict[str, str]] = field(default_factory=dict)
    topics: dict[str, dict[str, str]] = field(default_factory=dict)

    def name(self, kind: str, code: Any, locale: str) -> str:
        """The locale's name for a plan, feature or topic code."""
        if code is None:
            return ""
        names = {
            "plan": {p.code: p.names for p in self.plans},
            "feature": self.features,
            "topic": self.topics,
        }[kind].get(str(code), {})
        return _in_locale(names, locale) or humanized(str(code))

    def ladder(self, plan: Any) -> dict[str, Any]:
        """Where a plan stands: plan_rank (1 = lowest), is_top_plan, next_plan; None where the ladder does not know it."""
        codes = [p.code for p in self.plans]
        if plan not in codes:
            return dict.fromkeys(LADDER_COLUMNS)
        rank = codes.index(plan)
        top = rank == len(codes) - 1
        return dict(zip(LADDER_COLUMNS, (rank + 1, top, None if top else codes[rank + 1]), strict=True))

    def adds(self, plan: Any, locale: str) -> str:
        """What a plan adds over the one below it, in the locale ('' when the catalogue does not say)."""
        found = next((p for p in self.plans if p.code == plan), None)
        return _in_locale(found.adds, locale) if found else ""


def humanized(code: str) -> str:
    """`api_integration` -> `Api integration`: a readable stand-in for an unnamed code."""
    text = code.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _in_locale(texts: dict[str, str], locale: str) -> str:
    return texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")


def _texts(value: Any, where: str) -> dict[str, str]:
    """A text per locale ({en: ..., ja: ...}) or one text for every locale."""
    if isinstance(value, str):
        return {"en": value}
    if isinstance(value, dict) and value and all(isinstance(v, str) for v in value.values()):
        return {str(k): v for k, v in value.items()}
    raise ConfigError(f"{where}: expected a text or a mapping of locale: text, got {value!r}")


def parse_catalogue(raw: Any, where: str) -> Catalogue:
    """The `catalogue` section of playbooks.yml; mistakes name the file and the entry."""
    if raw is None:
        return Catalogue()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: catalogue must be a mapping with plans, features and topics")
    unknown = sorted(set(raw) - {"plans", "features", "topics"})
    if unknown:
        raise ConfigError(f"{where}: catalogue: unknown key {unknown[0]!r}; expected plans, features, topics")
    plans = []
    for i, entry in enumerate(raw.get("plans") or []):
        here = f"{where}: catalogue plan #{i + 1}"
        if not isinstance(entry, dict) or not entry.get("code"):
            raise ConfigError(f"{here}: each plan needs a code (and a name, and what it adds)")
        code = str(entry["code"])
        plans.append(
            Plan(
                code,
                _texts(entry.get("name", humanized(code)), f"{here} ({code}), name"),
                _texts(entry["adds"], f"{here} ({code}), adds") if entry.get("adds") else {},
            )
        )
    codes = [p.code for p in plans]
    if len(set(codes)) != len(codes):
        raise ConfigError(f"{where}: catalogue plans: each code once (the ladder lists plans lowest first)")
    named = {}
    for kind in ("features", "topics"):
        entries = raw.get(kind) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{where}: catalogue {kind}: expected a mapping of code: name")
        named[kind] = {str(code): _texts(value, f"{where}: catalogue {kind} {code}") for code, value in entries.items()}
    return Catalogue(tuple(plans), named["features"], named["topics"])
