"""Evidence on generated data with a year of history: signal history, backtests, the churn model.

    python benchmarks/evidence.py --accounts 10000
    CSFLOW_DATABASE_URL=postgresql+psycopg2://... python benchmarks/evidence.py

Generates a landing folder (the generator plants churn that depends on
behaviour, with noise), ingests it and builds the project for as_of, then
times and reports:

1. `csflow signals backfill` for the year before as_of (one set-based
   pass), beside a bare baseline: one nightly build of the same model for
   as_of alone, times the days;
2. account_health every 4 weeks back (`--with-health`), for the health
   score's AUC;
3. backtests of usage_decline at two thresholds, and of the health score,
   over the labelled part of the year;
4. `csflow model train`: the model card (AUC, Brier against the base rate,
   top-decile lift, calibration) and the health score's AUC beside it.

Targets (issue: Evidence): model AUC >= 0.72, Brier below the base rate's,
top-decile lift >= 3, health-score AUC >= 0.55; a year of signals for
10,000 accounts in minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("DBT_QUIET", "true")

from csflow.backtests import run_backtest  # noqa: E402
from csflow.churn import train  # noqa: E402
from csflow.config import Settings, load_settings  # noqa: E402
from csflow.dbt import run_dbt  # noqa: E402
from csflow.demo import generate  # noqa: E402
from csflow.ingest import ingest_folder  # noqa: E402
from csflow.run_context import write_run_context  # noqa: E402
from csflow.signals import build_signal_history  # noqa: E402
from csflow.warehouse import open_warehouse  # noqa: E402


def clock(label: str, started: float) -> float:
    elapsed = time.perf_counter() - started
    print(f"{label}: {elapsed:,.1f} s", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 3, 31))
    parser.add_argument("--days", type=int, default=365, help="days of signal history")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="csflow-bench-evidence-"))
    print(f"work folder: {work}")
    try:
        landing = work / "landing"
        counts = generate(landing, accounts=args.accounts, seed=args.seed, as_of=args.as_of)
        print(f"generated {args.accounts:,} accounts, {counts['usage_events']:,} usage events")
        settings = load_settings()
        if settings.uses_embedded_warehouse:
            settings = Settings(state_dir=work / "state", churn_model_min_churners=30)
        with open_warehouse(settings) as warehouse:
            engine = warehouse.engine()
            started = time.perf_counter()
            ingest_folder(engine, landing)
            write_run_context(engine, args.as_of, "bench", "Asia/Tokyo")
            run_dbt(warehouse, settings, ["build", "--exclude", "test_type:data"], use_prefect=False)
            clock("ingest and build for as_of", started)

            started = time.perf_counter()
            run_dbt(warehouse, settings, ["run", "--select", "account_signals_daily"], use_prefect=False)
            one_day = clock("baseline: account_signals_daily for as_of alone (a nightly build)", started)
            first = args.as_of - timedelta(days=args.days - 1)
            started = time.perf_counter()
            history = build_signal_history(warehouse, settings, first, args.as_of)
            year = clock(f"signals backfill, {args.days} days ({history.rows:,} rows)", started)
            print(f"  = {year / one_day:.1f} nightly builds' time for {args.days} days")
            started = time.perf_counter()
            health = build_signal_history(warehouse, settings, first, args.as_of, with_health=True)
            clock(f"the same with account_health for {len(health.health_days)} days", started)

            horizon = 90
            last = args.as_of - timedelta(days=horizon)
            started = time.perf_counter()
            result = run_backtest(
                warehouse, settings, "usage_decline", ["usage_decline_min_drop=0.2,0.3"], first, last, horizon
            )
            clock(f"backtest of usage_decline, {first} to {last}", started)
            for s in result.summaries:
                print(
                    f"  {s.setting}: {s.firings:,} firings, {s.judged:,} judged, precision "
                    f"{s.precision or 0:.1%}, recall {s.recall or 0:.1%} of {s.churners} churners, "
                    f"median lead {s.median_lead_days} days"
                )

            health_test = run_backtest(warehouse, settings, "health_score", [], first, last, horizon).summaries[0]
            print(
                f"  health_score: median monthly AUC {health_test.median_auc}, of {health_test.churners} churners "
                f"{health_test.churners_red} red and {health_test.churners_yellow} yellow {horizon} days ahead"
            )

            started = time.perf_counter()
            trained = train(warehouse, settings)
            clock("model train", started)
            card = trained.card
            print(f"  {trained.version} ({card.status}) {card.message}")
            print(
                f"  train {card.train_observations:,} obs / {card.train_churners} churners; validation "
                f"{card.validation_observations:,} obs / {card.validation_churners} churners"
            )
            if card.status == "published":
                print(
                    f"  AUC {card.auc:.3f}  PR-AUC {card.pr_auc:.3f}  Brier {card.brier:.4f} "
                    f"(base rate {card.brier_base_rate:.4f})  top-decile lift {card.top_decile_lift:.1f}  "
                    f"health AUC {card.health_auc if card.health_auc is None else round(card.health_auc, 3)} "
                    f"on {card.health_observations:,} obs"
                )
                print("  calibration (decile: predicted / observed):")
                for row in card.calibration:
                    print(f"    {row['decile']:>2}: {row['predicted']:.3f} / {row['observed']:.3f} (n={row['n']})")
                print(f"  coefficients: {card.coefficients}")
            engine.dispose()
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
