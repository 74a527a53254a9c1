"""The churn-risk model on synthetic observations where the truth is known.

No database: fit_churn_model is the part that learns and judges; the SQL
around it (features, labels, scoring) is tested on real data elsewhere.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from csflow.churn import fit_churn_model, predict

HORIZON = 90


def observations(driven: bool, accounts: int = 1500, weeks: int = 52, seed: int = 3) -> pd.DataFrame:
    """Weekly observations over a year. When driven, low usage (log_events_30d) raises the odds of
    churn within the horizon; every other feature is noise either way."""
    rng = np.random.default_rng(seed)
    start = date(2025, 1, 5)
    rows = []
    level = rng.normal(3, 1, accounts)
    for week in range(weeks):
        day = start + timedelta(days=7 * week)
        usage = level + rng.normal(0, 0.5, accounts)
        noise = rng.normal(0, 1, (accounts, 3))
        logit = -3.0 - (1.6 * (usage - 3) if driven else 0)
        churned = rng.random(accounts) < 1 / (1 + np.exp(-logit))
        for a in range(accounts):
            rows.append(
                (f"A{a:05d}", day, usage[a], noise[a, 0], noise[a, 1], noise[a, 2], int(churned[a]))
            )
    return pd.DataFrame(
        rows, columns=["account_id", "signal_date", "log_events_30d", "tickets", "nps_score", "log_arr_base", "churned"]
    )


def test_a_signal_that_drives_churn_is_found_and_the_model_beats_the_base_rate() -> None:
    frame = observations(driven=True)
    trained = fit_churn_model(frame, HORIZON, validation_days=91, min_churners=30)
    card = trained.card
    assert card.status == "published" and trained.parameters is not None
    assert next(iter(card.coefficients)) == "log_events_30d" and card.coefficients["log_events_30d"] < 0
    assert card.auc > 0.75
    assert card.brier < card.brier_base_rate
    assert card.top_decile_lift > 2.5
    # Calibrated: the riskiest decile's predicted rate is near what happened.
    top = card.calibration[-1]
    assert top["predicted"] == pytest.approx(top["observed"], abs=0.06)
    # Held-out time: training observations' horizons end before the validation window starts.
    assert card.train_to + timedelta(days=HORIZON) < card.validation_from
    # The published parameters score as churn_risk does; the signal's own AUC says lower is riskier.
    assert predict(trained.parameters, frame.head(5)).shape == (5,)
    usage = next(s for s in card.signals if s["signal"] == "log_events_30d")
    assert usage["auc"] < 0.3 and usage["buckets"][0]["churn_rate"] > usage["buckets"][-1]["churn_rate"]


def test_noise_is_not_mistaken_for_a_signal() -> None:
    card = fit_churn_model(observations(driven=False), HORIZON, validation_days=91, min_churners=30).card
    assert card.status == "published"
    assert 0.4 < card.auc < 0.6
    assert card.top_decile_lift < 1.6
    assert all(abs(weight) < 0.1 for weight in card.coefficients.values())


def test_too_few_churners_publish_nothing() -> None:
    frame = observations(driven=True, accounts=40, weeks=30)
    trained = fit_churn_model(frame, HORIZON, validation_days=91, min_churners=30)
    assert trained.card.status == "too_few_churners" and trained.parameters is None
    assert "churn_model_min_churners" in trained.card.message
