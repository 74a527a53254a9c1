"""The churn-risk model: trained on the daily signal history, its quality published.

`csflow model train` reads weekly observations of every active account
(intermediate.int_churn_features: the churn_features macro over
account_signals_daily), labels each with whether the account's contract
ended in churn within the horizon after it, and fits a regularised logistic
regression on standardised features. Quality is measured on time the model
has not seen: it trains on observations whose horizon ended before the most
recent `churn_model_validation_days` of labelled history and is judged on
those. The card (AUC, PR-AUC, Brier score against the base rate's, a
calibration table, top-decile lift, the health score's AUC on the same
observations, each signal's own churn rates) goes to ops.model_runs with the
parameters; marts.churn_risk scores with them in SQL, so the nightly build
scores every account with the latest published model.

Too few churners in the history: the run is recorded as `too_few_churners`
and nothing is published, rather than scores that are noise.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from csflow.config import Settings
from csflow.dbt import dbt_var, run_dbt
from csflow.warehouse import Warehouse

log = logging.getLogger(__name__)

OBSERVATION_STEP_DAYS = 7  # one observation per account per week: days next to each other say the same
KEYS = ("account_id", "signal_date")
LABEL = "churned"


@dataclass
class ModelCard:
    """What a training run found; JSON in ops.model_runs.card."""

    status: str  # published | too_few_churners
    horizon_days: int
    train_from: date | None = None
    train_to: date | None = None
    validation_from: date | None = None
    validation_to: date | None = None
    train_observations: int = 0
    train_churners: int = 0  # accounts with a churn in the horizon of one of their observations
    validation_observations: int = 0
    validation_churners: int = 0
    auc: float | None = None
    pr_auc: float | None = None
    brier: float | None = None
    brier_base_rate: float | None = None  # always forecasting the training churn rate
    base_rate: float | None = None
    top_decile_lift: float | None = None
    health_auc: float | None = None  # lower health predicting churn, on the validation observations that have a score
    health_observations: int = 0
    calibration: list[dict[str, float]] = field(default_factory=list)  # per decile of predicted risk
    coefficients: dict[str, float] = field(default_factory=dict)  # standardised, log-odds per standard deviation
    signals: list[dict[str, Any]] = field(default_factory=list)  # each feature's own churn rates and AUC
    message: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)


@dataclass
class TrainedModel:
    card: ModelCard
    parameters: dict[str, Any] | None  # None unless published
    version: str = ""  # its ops.model_runs key, once recorded


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else None


REGULARISATION = (0.01, 0.03, 0.1, 0.3, 1.0)  # inverse strengths (sklearn's C) tried by cross-validation


def _fit(x: pd.DataFrame, y: np.ndarray, accounts: pd.Series) -> dict[str, Any]:
    """Standardise, fit a ridge-regularised logistic regression, calibrate it (Platt, on
    cross-validated logits); the parameters churn_risk scores with.

    The folds split accounts, not observations: an account's observations four
    weeks apart are near copies, and folds that share them reward memorising
    the few churners. The regularisation strength is the one among
    REGULARISATION whose cross-validated, calibrated forecasts score the best
    log-loss (the per-event-type counts overlap the total, and a small history
    overfits them at sklearn's default strength).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    mean = x.mean()
    scale = x.std(ddof=0).replace(0, 1.0)
    z = ((x - mean) / scale).to_numpy()
    folds = list(StratifiedGroupKFold(3, shuffle=True, random_state=0).split(z, y, groups=accounts))
    best: tuple[float, float, LogisticRegression] | None = None
    for c in REGULARISATION:
        logits = cross_val_predict(LogisticRegression(C=c, max_iter=2000), z, y, cv=folds, method="decision_function")
        platt = LogisticRegression(C=1e6, max_iter=2000).fit(logits.reshape(-1, 1), y)
        loss = log_loss(y, platt.predict_proba(logits.reshape(-1, 1))[:, 1])
        if best is None or loss < best[0]:
            best = (loss, c, platt)
    _, c, platt = best
    model = LogisticRegression(C=c, max_iter=2000).fit(z, y)
    return {
        "intercept": float(model.intercept_[0]),
        "regularisation_c": c,
        "calibration": {"a": float(platt.coef_[0][0]), "b": float(platt.intercept_[0])},
        "features": {
            name: {"weight": float(w), "mean": float(mean[name]), "scale": float(scale[name])}
            for name, w in zip(x.columns, model.coef_[0], strict=True)
        },
    }


def predict(parameters: dict[str, Any], x: pd.DataFrame) -> np.ndarray:
    """Churn probabilities, as churn_risk computes them in SQL."""
    features = parameters["features"]
    logit = parameters["intercept"] + sum(
        f["weight"] * (x[name].to_numpy() - f["mean"]) / f["scale"] for name, f in features.items()
    )
    a, b = parameters["calibration"]["a"], parameters["calibration"]["b"]
    return 1 / (1 + np.exp(-(a * logit + b)))


def _calibration(y: np.ndarray, p: np.ndarray) -> list[dict[str, float]]:
    bins = pd.qcut(pd.Series(p).rank(method="first"), 10, labels=False)
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y})
    return [
        {"decile": int(b) + 1, "predicted": round(float(g.p.mean()), 4), "observed": round(float(g.y.mean()), 4), "n": len(g)}
        for b, g in frame.groupby("bin")
    ]


def _signals(x: pd.DataFrame, y: np.ndarray) -> list[dict[str, Any]]:
    """Each feature alone: churn rate per quintile (fewer buckets where values repeat) and its AUC."""
    out = []
    for name in x.columns:
        values = x[name]
        buckets = pd.qcut(values.rank(method="dense"), 5, labels=False, duplicates="drop") if values.nunique() > 1 else pd.Series(0, index=values.index)
        frame = pd.DataFrame({"bucket": buckets.to_numpy(), "value": values.to_numpy(), "y": y})
        out.append(
            {
                "signal": name,
                "auc": _auc(y, values.to_numpy()),
                "buckets": [
                    {
                        "bucket": int(b) + 1,
                        "low": float(g.value.min()),
                        "high": float(g.value.max()),
                        "observations": len(g),
                        "churn_rate": round(float(g.y.mean()), 4),
                    }
                    for b, g in frame.groupby("bucket")
                ],
            }
        )
    return out


def fit_churn_model(
    observations: pd.DataFrame,
    horizon: int,
    validation_days: int,
    min_churners: int,
    health: pd.Series | None = None,
) -> TrainedModel:
    """Train and judge on held-out time; publish parameters only with enough churners.

    observations: one row per account and observation day (KEYS), feature
    columns, and LABEL (churn within the horizon after the day). health: the
    account_health score per observation (same index), for comparison.
    """
    from sklearn.metrics import average_precision_score, brier_score_loss

    features = [c for c in observations.columns if c not in (*KEYS, LABEL)]
    card = ModelCard(status="too_few_churners", horizon_days=horizon)
    if observations.empty:
        card.message = "no labelled observations: build the signal history (csflow signals backfill)"
        return TrainedModel(card, None)
    days = pd.to_datetime(observations.signal_date).dt.date
    validation_from = days.max() - timedelta(days=validation_days - 1)
    train = observations[days + timedelta(days=horizon) < validation_from]
    valid = observations[days >= validation_from]
    card.train_observations, card.validation_observations = len(train), len(valid)
    card.train_churners = int(train.loc[train[LABEL] == 1, "account_id"].nunique())
    card.validation_churners = int(valid.loc[valid[LABEL] == 1, "account_id"].nunique())
    if len(train):
        card.train_from, card.train_to = min(days[train.index]), max(days[train.index])
    if len(valid):
        card.validation_from, card.validation_to = validation_from, days.max()
    if card.train_churners < min_churners or card.validation_churners == 0:
        card.message = (
            f"{card.train_churners} account(s) churned within {horizon} days of a training observation and "
            f"{card.validation_churners} in the validation window; at least {min_churners} (setting "
            "churn_model_min_churners) and one are needed: no scores published"
        )
        return TrainedModel(card, None)

    y_train = train[LABEL].to_numpy(dtype=int)
    y_valid = valid[LABEL].to_numpy(dtype=int)
    held_out = _fit(train[features], y_train, train.account_id)
    p = predict(held_out, valid[features])
    base = float(y_train.mean())
    card.auc = _auc(y_valid, p)
    card.pr_auc = float(average_precision_score(y_valid, p))
    card.brier = float(brier_score_loss(y_valid, p))
    card.brier_base_rate = float(brier_score_loss(y_valid, np.full(len(y_valid), base)))
    card.base_rate = base
    top = p >= np.quantile(p, 0.9)
    card.top_decile_lift = float(y_valid[top].mean() / y_valid.mean()) if y_valid.mean() > 0 else None
    card.calibration = _calibration(y_valid, p)
    if health is not None:
        scored = health.loc[valid.index].notna().to_numpy()
        card.health_observations = int(scored.sum())
        if scored.any():
            card.health_auc = _auc(y_valid[scored], -health.loc[valid.index].to_numpy(dtype=float)[scored])
    card.signals = _signals(observations[features], observations[LABEL].to_numpy(dtype=int))

    # The published model learns from all the labelled history, the held-out window included.
    parameters = _fit(observations[features], observations[LABEL].to_numpy(dtype=int), observations.account_id)
    card.coefficients = {
        name: round(f["weight"], 4)
        for name, f in sorted(parameters["features"].items(), key=lambda kv: -abs(kv[1]["weight"]))
    }
    card.status = "published"
    return TrainedModel(card, parameters)


# One observation per account per OBSERVATION_STEP_DAYS, counted back from as_of,
# whose horizon has passed by as_of; with the health score where account_health has one.
_OBSERVATIONS = """
select f.*, h.health_score
from intermediate.int_churn_features f
left join marts.account_health h on h.account_id = f.account_id and h.as_of_date = f.signal_date
where f.signal_date <= cast(:as_of as date) - :horizon
  and (f.signal_date - cast(:as_of as date)) % :step = 0
order by f.signal_date, f.account_id
"""
_CHURN_ENDS = """
select account_id, end_date from intermediate.int_contract_ends_labelled
where outcome = 'churned' and end_date <= :as_of
"""


def label(observations: pd.DataFrame, churn_ends: pd.DataFrame, horizon: int) -> pd.Series:
    """1 where the account's contract ended in churn within the horizon after the observation day, else 0.

    A join on the account (an account has few contract ends), not a subquery per
    observation: hundreds of thousands of observations label in a second.
    """
    keyed = observations[["account_id", "signal_date"]].reset_index()
    pairs = keyed.merge(churn_ends, on="account_id")
    days = (pd.to_datetime(pairs.end_date) - pd.to_datetime(pairs.signal_date)).dt.days
    churned = set(pairs.loc[(days > 0) & (days <= horizon), "index"])
    return pd.Series(observations.index.isin(list(churned)).astype(int), index=observations.index)


def train(warehouse: Warehouse, settings: Settings, as_of: date | None = None) -> TrainedModel:
    """Train on the history up to as_of (default: the latest run's), record the card, score as_of."""
    from csflow.signals import current_as_of

    horizon = int(dbt_var("churn_horizon_days"))
    engine = warehouse.engine()
    try:
        latest = current_as_of(engine)
        if latest is None:
            raise ValueError("model: the warehouse has no run yet; run `csflow run` (or `csflow demo`) first")
        as_of = as_of or latest
        if as_of > latest:
            raise ValueError(f"model: --as-of {as_of} is after the latest run's as_of {latest}")
        # The views the observations read (features, labels) exist once the project is built; make sure.
        run_dbt(warehouse, settings, ["run", "--select", "int_churn_features", "int_contract_ends_labelled"], use_prefect=False)
        with engine.connect() as conn:
            frame = pd.read_sql(
                sa.text(_OBSERVATIONS), conn, params={"as_of": as_of, "horizon": horizon, "step": OBSERVATION_STEP_DAYS}
            )
            churn_ends = pd.read_sql(sa.text(_CHURN_ENDS), conn, params={"as_of": as_of})
        health = frame.pop("health_score")
        frame[LABEL] = label(frame, churn_ends, horizon)
        trained = fit_churn_model(
            frame, horizon, settings.churn_model_validation_days, settings.churn_model_min_churners, health
        )
        trained.version = record(engine, as_of, trained)
    finally:
        engine.dispose()
    if trained.parameters is not None and as_of == latest:
        run_dbt(warehouse, settings, ["run", "--select", "int_churn_model_latest", "churn_risk", "churn_drivers"], use_prefect=False)
    return trained


def record(engine: sa.Engine, as_of: date, trained: TrainedModel) -> str:
    """Insert the run into ops.model_runs; its version names the day and the parameters."""
    card = trained.card
    digest = hashlib.sha256(json.dumps(trained.parameters, sort_keys=True).encode()).hexdigest()[:8]
    version = f"churn-{as_of:%Y%m%d}-{digest if trained.parameters else 'none'}"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """insert into ops.model_runs (model_version, as_of_date, status, horizon_days, train_from, train_to,
                       validation_from, validation_to, train_observations, train_churners, validation_observations,
                       validation_churners, card, parameters)
                   values (:version, :as_of, :status, :horizon, :train_from, :train_to, :validation_from, :validation_to,
                       :train_observations, :train_churners, :validation_observations, :validation_churners,
                       cast(:card as jsonb), cast(:parameters as jsonb))
                   on conflict (model_version) do update set trained_at = now(), card = excluded.card"""
            ),
            {
                "version": version,
                "as_of": as_of,
                "status": card.status,
                "horizon": card.horizon_days,
                "train_from": card.train_from,
                "train_to": card.train_to,
                "validation_from": card.validation_from,
                "validation_to": card.validation_to,
                "train_observations": card.train_observations,
                "train_churners": card.train_churners,
                "validation_observations": card.validation_observations,
                "validation_churners": card.validation_churners,
                "card": card.to_json(),
                "parameters": json.dumps(trained.parameters) if trained.parameters else None,
            },
        )
    return version


def latest_model(conn: sa.Connection) -> dict[str, Any] | None:
    """The latest published model run (version, when, card), or None: for the KPI pages."""
    row = conn.execute(
        sa.text(
            "select model_version, trained_at, as_of_date, card from ops.model_runs "
            "where status = 'published' order by trained_at desc, model_version desc limit 1"
        )
    ).mappings().first()
    if row is None:
        return None
    card = row["card"]
    return {
        **dict(row),
        # jsonb keeps keys in its own order, not the card's: rank them again
        "drivers": sorted(card.get("coefficients", {}).items(), key=lambda kv: -abs(kv[1]))[:5],
    }


def account_risk(conn: sa.Connection, account_id: str) -> dict[str, Any] | None:
    """The account's latest churn_risk row, or None (no model published, or not built yet)."""
    if conn.execute(sa.text("select to_regclass('marts.churn_risk')")).scalar() is None:
        return None
    row = conn.execute(
        sa.text(
            "select * from marts.churn_risk where account_id = :id "
            "order by as_of_date desc limit 1"
        ),
        {"id": account_id},
    ).mappings().first()
    return dict(row) if row else None
