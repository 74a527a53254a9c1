"""Backtests: what a play's rule would have done over the daily signal history.

`csflow backtest --play usage_decline --set usage_decline_min_drop=0.2,0.3`
replays the play's audience rule (the same dbt macro the audience model
uses) over marts.account_signals_daily for each setting, in dbt SQL
(marts.play_backtests), and reads the rows back for a table and an HTML
report. Labels come from contracts (int_contract_ends_labelled): a contract
ends in churn when its status says so or no contract follows it.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from csflow import charts
from csflow.config import Settings
from csflow.dbt import dbt_var, project_vars, run_dbt
from csflow.render import TEMPLATES_DIR
from csflow.signals import current_as_of
from csflow.warehouse import Warehouse

# Plays whose audience rule is a macro over the daily signals (dbt macro backtest_plays),
# and the health score (dbt macro health_score_backtest), which has no setting to vary.
BACKTEST_PLAYS = ("usage_decline", "inquiry_surge", "high_interest", "health_score")
HEALTH_BAND_VARS = ("health_green_min_score", "health_yellow_min_score")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class SettingSummary:
    """One setting's backtest over the whole range (the months summed)."""

    setting: str
    firings: int
    judged: int
    churned: int
    renewed: int
    expanded: int
    churners: int
    reached: int
    median_lead_days: float | None
    months: list[tuple[date, int]]  # firings per month, for the chart
    auc_by_month: list[tuple[date, float]] = field(default_factory=list)  # health_score only
    churners_red: int = 0  # health_score only: churners red, or yellow, a horizon before their end
    churners_yellow: int = 0

    @property
    def precision(self) -> float | None:
        return self.churned / self.judged if self.judged else None

    @property
    def recall(self) -> float | None:
        return self.reached / self.churners if self.churners else None

    @property
    def median_auc(self) -> float | None:
        return statistics.median(a for _, a in self.auc_by_month) if self.auc_by_month else None


@dataclass(frozen=True)
class Backtest:
    play: str
    first: date
    last: date
    horizon: int
    as_of: date  # outcomes as known on the warehouse's latest run
    summaries: list[SettingSummary]


def parse_settings(play: str, sets: list[str]) -> dict[str, dict[str, float]]:
    """`VAR=v1,v2` options -> {label: {VAR: value}}, one per combination; the configured values when none.

    Each VAR must be a var of the dbt project; values are numbers.
    """
    if play not in BACKTEST_PLAYS:
        raise ValueError(f"backtest: play {play!r} has no rule over the daily signals; try one of {', '.join(BACKTEST_PLAYS)}")
    known = project_vars()
    if play == "health_score":
        # Stored component scores re-weighed: the weights and the band thresholds can be tried.
        known = {k: v for k, v in known.items() if k.startswith("health_weight_") or k in HEALTH_BAND_VARS}
    axes: list[list[tuple[str, float]]] = []
    for option in sets:
        name, eq, values = option.partition("=")
        name = name.strip()
        if not eq or not _NAME.fullmatch(name) or not values.strip():
            raise ValueError(f"backtest: --set {option!r} is not VAR=value[,value...]")
        if name not in known:
            raise ValueError(
                f"backtest: --set {name}: no such var in dbt_project/dbt_project.yml"
                + (" that the health score's backtest can vary (health_weight_*, band thresholds)" if play == "health_score" else "")
            )
        try:
            axes.append([(name, float(v)) for v in values.split(",")])
        except ValueError:
            raise ValueError(f"backtest: --set {option!r}: values must be numbers") from None
    if not axes:
        return {"configured": {}}
    return {
        ", ".join(f"{name}={value:g}" for name, value in combo): dict(combo) for combo in itertools.product(*axes)
    }


def run_backtest(
    warehouse: Warehouse,
    settings: Settings,
    play: str,
    sets: list[str],
    first: date,
    last: date,
    horizon: int | None = None,
) -> Backtest:
    """Backtest the play for each setting from first to last; the rows land in marts.play_backtests."""
    tried = parse_settings(play, sets)
    horizon = int(horizon if horizon is not None else dbt_var("churn_horizon_days"))
    if first > last:
        raise ValueError(f"backtest: --from {first} is after --to {last}")
    if horizon < 1:
        raise ValueError("backtest: --horizon must be at least 1 day")
    engine = warehouse.engine()
    try:
        held, days = _days_held(engine, "marts.account_signals_daily", "signal_date", first, last), (last - first).days + 1
        if held < days:
            raise ValueError(
                f"backtest: the signal history holds {held} of the {days} days from {first} to {last}; "
                f"build it first: csflow signals backfill --from {first} --to {last}"
            )
        if play == "health_score" and not _days_held(engine, "marts.account_health", "as_of_date", first, last):
            raise ValueError(
                f"backtest: account_health holds no day from {first} to {last}; build some first: "
                f"csflow signals backfill --from {first} --to {last} --with-health"
            )
        as_of = current_as_of(engine)
        run_dbt(
            warehouse,
            settings,
            ["run", "--select", "int_contract_ends_labelled", "play_backtests"],
            use_prefect=False,
            dbt_vars={
                "backtest": {
                    "play": play,
                    "settings": tried,
                    "from": first.isoformat(),
                    "to": last.isoformat(),
                    "horizon": horizon,
                }
            },
        )
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select * from marts.play_backtests where playbook = :play and setting = any(:settings) "
                    "order by setting, month"
                ),
                {"play": play, "settings": list(tried)},
            ).mappings().all()
    finally:
        engine.dispose()
    summaries = [_summary(label, [r for r in rows if r["setting"] == label]) for label in tried]
    return Backtest(play, first, last, horizon, as_of, summaries)


def _days_held(engine: sa.Engine, table: str, column: str, first: date, last: date) -> int:
    """How many distinct days from first to last a history table holds (table and column are ours, not input)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(f"select count(distinct {column}) from {table} where {column} between :first and :last"),
            {"first": first, "last": last},
        ).scalar_one()


def _summary(label: str, rows: list) -> SettingSummary:
    total = {k: sum(int(r[k]) for r in rows) for k in ("firings", "firings_judged", "churned", "renewed", "expanded", "churners", "churners_reached")}
    leads = [lead for r in rows for lead in r["lead_days"] or ()]
    return SettingSummary(
        setting=label,
        firings=total["firings"],
        judged=total["firings_judged"],
        churned=total["churned"],
        renewed=total["renewed"],
        expanded=total["expanded"],
        churners=total["churners"],
        reached=total["churners_reached"],
        median_lead_days=statistics.median(leads) if leads else None,
        months=[(r["month"], int(r["firings"])) for r in rows],
        auc_by_month=[(r["month"], float(r["auc"])) for r in rows if r["auc"] is not None],
        churners_red=sum(int(r["churners_red"] or 0) for r in rows),
        churners_yellow=sum(int(r["churners_yellow"] or 0) for r in rows),
    )


def write_report(folder: Path, backtest: Backtest) -> Path:
    """An HTML page (one file, inline charts) beside the other reports: backtest-<play>.html."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR / "reports"), autoescape=True)
    page = env.get_template("backtest.html").render(
        backtest=backtest,
        built=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        charts=[charts.bars(s.months, f"Firings per month, {s.setting}") for s in backtest.summaries],
        auc_charts=[charts.line(s.auc_by_month, f"Health score AUC per month, {s.setting}", 0, 1) for s in backtest.summaries],
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"backtest-{backtest.play}.html"
    path.write_text(page, encoding="utf-8")
    return path
