"""Weekly: retrain the churn-risk model on the signal history and publish its card.

The nightly build scores every active account with the latest published
model (marts.churn_risk, in SQL); this flow replaces that model once a week
with one trained on the history up to the latest run. A history with too few
churners publishes nothing: the run says so and the previous model (if any)
stays in use.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from csflow.alerts import alert_on_failure
from csflow.churn import train
from csflow.config import load_settings
from csflow.warehouse import open_warehouse


@flow(name="train_churn_model", log_prints=False, on_failure=[alert_on_failure], on_crashed=[alert_on_failure])
def train_churn_model(as_of: date | None = None) -> dict[str, Any]:
    """Train on the history up to as_of (default: the latest run's), record the model card, score as_of."""
    settings = load_settings()
    logger = get_run_logger()
    with open_warehouse(settings) as warehouse, warehouse.exclusive("model train", settings.run_lock_wait_seconds):
        trained = train(warehouse, settings, as_of)
    card = trained.card
    if card.status == "published":
        logger.info("%s: AUC %.3f, Brier %.4f (base rate %.4f)", trained.version, card.auc, card.brier, card.brier_base_rate)
        lines = [
            f"- AUC {card.auc:.3f}, PR-AUC {card.pr_auc:.3f}",
            f"- Brier {card.brier:.4f} (base rate's {card.brier_base_rate:.4f})",
            f"- top-decile lift {card.top_decile_lift:.1f}",
            f"- health score AUC {'-' if card.health_auc is None else f'{card.health_auc:.3f}'}",
            f"- judged on {card.validation_from} to {card.validation_to} ({card.validation_churners} churners)",
        ]
    else:
        logger.warning("%s: nothing published: %s", trained.version, card.message)
        lines = [f"- nothing published: {card.message}"]
    create_markdown_artifact(
        key="churn-model-card",
        markdown=f"# Churn-risk model {trained.version}\n\n" + "\n".join(lines) + "\n",
        description=f"churn-risk model {trained.version}",
    )
    return {"model_version": trained.version, **json.loads(card.to_json())}
