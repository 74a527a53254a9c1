"""dbt build time: a full build, then a daily incremental run, on generated data.

    python benchmarks/marts.py --accounts 10000                 # ~5M usage events
    python benchmarks/marts.py --accounts 10000 --double-usage  # ~10M usage events
    CSFLOW_DATABASE_URL=postgresql+psycopg2://... python benchmarks/marts.py

Generates a landing folder with csflow's generator (with --double-usage, the
usage events of a second generation with another seed are loaded on top: the
same accounts, twice the activity), ingests it, and times:

1. a full `dbt build` of the whole project on the fresh warehouse
   (incremental models are created from scratch);
2. a daily run: as_of + 1 day, after ingesting a second, small landing folder
   that holds only the new day's usage_events.csv (as_of's events moved one
   day on, with new ids), then `dbt build` again;
3. for reference, the same build once more with nothing new: the fixed cost
   of a build of this project (parsing, ~300 nodes, views, small tables).

Targets on a 2-core machine at 10k accounts / 10M usage events: full build
under 3 minutes, the daily build under 15% of it. Uses the configured
warehouse, or a throwaway embedded one outside any pytest tree.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

os.environ.setdefault("DO_NOT_TRACK", "1")

from csflow.config import Settings, load_settings  # noqa: E402
from csflow.contract import ENTITIES  # noqa: E402
from csflow.dbt import DbtResult, run_dbt  # noqa: E402
from csflow.demo import generate  # noqa: E402
from csflow.ingest import ingest_folder, load_file  # noqa: E402
from csflow.run_context import write_run_context  # noqa: E402
from csflow.warehouse import Warehouse, open_warehouse  # noqa: E402

TIMEZONE = "Asia/Tokyo"
T = TypeVar("T")


def timed(label: str, func: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float]:
    start = time.perf_counter()
    result = func(*args, **kwargs)
    elapsed = time.perf_counter() - start
    print(f"{label}: {elapsed:,.1f}s", flush=True)
    return result, elapsed


def write_next_day(engine: sa.Engine, as_of: date, folder: Path) -> int:
    """usage_events.csv with as_of's events (in TIMEZONE) moved one day on: one more day of usage."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "usage_events.csv"
    sql = f"""
        copy (
            select account_id,
                   to_char((occurred_at + interval '1 day') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   event_type, 'NEXT-' || coalesce(event_id, ''), user_id, feature
            from raw.usage_events
            where (occurred_at at time zone '{TIMEZONE}')::date = date '{as_of.isoformat()}'
        ) to stdout with (format csv, header false)
    """
    raw = engine.raw_connection()
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(",".join(ENTITIES["usage_events"].column_names) + "\n")
            raw.cursor().copy_expert(sql, f)
    finally:
        raw.close()
    with open(path, encoding="utf-8") as f:
        return sum(1 for _ in f) - 1


def slowest(label: str, settings: Settings, top: int = 12) -> None:
    """The slowest nodes of the last dbt invocation, from its run_results.json."""
    path = settings.state_dir.resolve() / "dbt" / "target" / "run_results.json"
    results = json.loads(path.read_text())["results"]
    results.sort(key=lambda r: r["execution_time"], reverse=True)
    total = sum(r["execution_time"] for r in results)
    print(f"  slowest nodes of the {label} build (sum of node times {total:,.1f}s over {len(results)} nodes):")
    for r in results[:top]:
        print(f"    {r['execution_time']:7.2f}s  {r['unique_id']}")


def build(warehouse: Warehouse, settings: Settings, engine: sa.Engine, as_of: date, select: list[str]) -> DbtResult:
    write_run_context(engine, as_of, "bench", TIMEZONE)
    return run_dbt(warehouse, settings, ["build", *select], use_prefect=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts to generate (~500 usage events each)")
    parser.add_argument("--double-usage", action="store_true", help="load a second seed's usage events (~2x)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 3, 31))
    parser.add_argument("--data", type=Path, help="reuse a landing folder instead of generating one")
    parser.add_argument("--threads", type=int, default=None, help="dbt threads (default: setting dbt_threads)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (warehouse, dbt run_results.json)")
    parser.add_argument("--select", help="time `dbt build --select SELECT` instead of the whole project (diagnostics)")
    parser.add_argument("--exclude", help="and `--exclude EXCLUDE` (diagnostics)")
    args = parser.parse_args()

    # Outside pytest-style 0700 trees: the embedded server may run as its own user.
    work = Path(tempfile.mkdtemp(prefix="csflow-bench-marts-"))
    print(f"work folder: {work}")
    try:
        landing = args.data or work / "landing"
        if not args.data:
            counts, _ = timed("generate", generate, landing, accounts=args.accounts, seed=1, as_of=args.as_of)
            print(f"  {counts['usage_events']:,} usage events for {args.accounts:,} accounts")
        extra = work / "extra"
        if args.double_usage:
            counts, _ = timed(
                "generate (second seed)", generate, extra, accounts=args.accounts, seed=2, as_of=args.as_of
            )
            print(f"  {counts['usage_events']:,} more usage events")

        settings = load_settings()
        if settings.uses_embedded_warehouse:
            settings = Settings(state_dir=work / "state")
        if args.threads:
            settings = dataclasses.replace(settings, dbt_threads=args.threads)
        with open_warehouse(settings) as warehouse:
            engine = warehouse.engine()
            timed("ingest", ingest_folder, engine, landing)
            if args.double_usage:
                timed(
                    "ingest (second seed's usage)",
                    load_file,
                    engine,
                    ENTITIES["usage_events"],
                    extra / "usage_events.csv",
                )
                with engine.begin() as conn:
                    conn.execute(sa.text("analyze raw.usage_events"))
            with engine.connect() as conn:
                events = conn.execute(sa.text("select count(*) from raw.usage_events")).scalar_one()
            print(f"  raw.usage_events: {events:,} rows; warehouse: {warehouse.display}")

            timed("dbt parse (not counted)", run_dbt, warehouse, settings, ["parse"], use_prefect=False)
            select = ["--select", args.select, "--indirect-selection", "cautious"] if args.select else []
            select += ["--exclude", args.exclude] if args.exclude else []
            result, full = timed("full dbt build", build, warehouse, settings, engine, args.as_of, select)
            print(f"  {result.summary()}")
            slowest("full", settings)

            next_day = args.as_of + timedelta(days=1)
            rows = write_next_day(engine, args.as_of, work / "daily")
            print(f"daily landing: {rows:,} usage events on {next_day}")
            timed("daily ingest (not counted)", ingest_folder, engine, work / "daily")
            result, daily = timed("daily dbt build", build, warehouse, settings, engine, next_day, select)
            print(f"  {result.summary()}")
            slowest("daily", settings)
            # The same day again with nothing new: what any build of this project costs.
            _, floor = timed("no-change dbt build", build, warehouse, settings, engine, next_day, select)
            engine.dispose()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"selection:           {args.select or 'whole project'}"
        + (f", excluding {args.exclude}" if args.exclude else "")
    )
    print(f"usage events:        {events:>12,}")
    print(f"full dbt build:      {full:10.1f}s  (target < 180s)")
    print(f"daily dbt build:     {daily:10.1f}s")
    print(f"daily / full:        {daily / full:10.1%}  (target < 15%)")
    print(f"no-change build:     {floor:10.1f}s  (fixed cost: dbt, views, tests, small tables)")


if __name__ == "__main__":
    main()
