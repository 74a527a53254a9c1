"""Links in email into the workspace (`csflow serve`), all under setting base_url.

Each link that acts carries a signed token (csflow.tokens) that is the
authority for exactly one thing: an unsubscribe link for one address
(unsubscribe_secret, no expiry: the law wants opt-outs to keep working), an
outcome button for one firing and one outcome (workspace_secret, 90 days), a
survey score for one contact's training (unsubscribe_secret like every
customer link, 60 days).
Pages behind them show a confirmation and act only on its POST.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from csflow import tokens
from csflow.addresses import normalized
from csflow.config import Settings
from csflow.outcomes import OUTCOMES

# An outcome button in a CSM alert works this long after the alert was sent.
OUTCOME_LINK_DAYS = 90
# A survey's score links work this long after the survey was sent.
SURVEY_LINK_DAYS = 60
SURVEY_SCORES = range(11)


def unsubscribe_url(settings: Settings, address: str) -> str:
    """The opt-out link for one address: signed, so nobody can unsubscribe someone else."""
    token = tokens.sign(settings.unsubscribe_secret, "unsubscribe", normalized(address))
    return tokens.link(settings.link("unsubscribe"), token)


def outcome_links(settings: Settings, action_id: int) -> dict[str, str]:
    """One link per outcome for a CSM alert; each is the authority for its one firing."""
    return {
        outcome: tokens.link(
            settings.link("outcome"),
            tokens.sign(settings.workspace_secret, "outcome", f"{action_id}:{outcome}", OUTCOME_LINK_DAYS * 86400),
        )
        for outcome in OUTCOMES
    }


def account_url(settings: Settings, account_id: str) -> str:
    return settings.link(f"accounts/{quote(str(account_id), safe='')}")


def task_url(settings: Settings, task_id: int) -> str:
    return settings.link(f"tasks/{int(task_id)}")


def survey_links(settings: Settings, action_id: int, row: dict[str, Any], contact_id: str) -> list[tuple[int, str]]:
    """(score, link) for 0-10: to the workspace's /survey page, or to setting survey_url's tool."""
    ids = {"account_id": row["account_id"], "contact_id": contact_id, "training_id": row["training_id"]}
    if settings.survey_url:
        return [
            (score, settings.survey_url.format(**{k: quote(str(v), safe="") for k, v in ids.items()}, score=score))
            for score in SURVEY_SCORES
        ]
    return [
        (
            score,
            tokens.link(
                settings.link("survey"),
                tokens.sign(
                    settings.unsubscribe_secret,
                    "survey",
                    json.dumps([action_id, ids["account_id"], contact_id, ids["training_id"], score]),
                    SURVEY_LINK_DAYS * 86400,
                ),
            ),
        )
        for score in SURVEY_SCORES
    ]


@dataclass(frozen=True)
class SurveyAnswer:
    """What a survey link stands for: one score from one contact about one training."""

    action_id: int
    account_id: str
    contact_id: str
    training_id: str
    score: int


def read_survey_token(settings: Settings, token: str) -> SurveyAnswer:
    """The answer a survey link stands for; tokens.TokenError when it is not valid or has expired."""
    action_id, account_id, contact_id, training_id, score = json.loads(
        tokens.read(settings.unsubscribe_secret, "survey", token)
    )
    return SurveyAnswer(int(action_id), str(account_id), str(contact_id), str(training_id), int(score))
