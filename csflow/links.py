"""Links in email into the workspace (`csflow serve`), all under setting base_url.

Each link that acts carries a signed token (csflow.tokens) that is the
authority for exactly one thing: an unsubscribe link for one address
(unsubscribe_secret, no expiry: the law wants opt-outs to keep working), an
outcome button for one firing and one outcome (workspace_secret, 90 days).
Pages behind them show a confirmation and act only on its POST.
"""

from __future__ import annotations

from urllib.parse import quote

from csflow import tokens
from csflow.addresses import normalized
from csflow.config import Settings
from csflow.outcomes import OUTCOMES

# An outcome button in a CSM alert works this long after the alert was sent.
OUTCOME_LINK_DAYS = 90


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
