"""Ingest throughput next to a bare COPY of the same file, in the same run.

    python benchmarks/ingest.py --accounts 10000          # ~5M usage events
    CSFLOW_DATABASE_URL=postgresql+psycopg2://postgres@127.0.0.1:5432/test python benchmarks/ingest.py

Generates a landing folder with csflow's generator, then times, alternately,
a bare `COPY` of usage_events.csv into a table of untyped text columns and
csflow's ingest of the same file (checks, rejects, flags, key replacement).
Uses the configured warehouse, or a throwaway embedded one.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from csflow.config import Settings, load_settings
from csflow.contract import ENTITIES
from csflow.demo import generate
from csflow.ingest import _known_accounts, load_file
from csflow.warehouse import open_warehouse


def bare_copy(engine: sa.Engine, path: Path) -> float:
    with open(path, encoding="utf-8") as f:
        header = next(csv.reader(f))
    cols = ", ".join(f'"{c}" text' for c in header)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"drop table if exists public.bench_bare; create table public.bench_bare ({cols})")
        raw.commit()
        start = time.perf_counter()
        with open(path, "rb") as f:
            cur.copy_expert("copy public.bench_bare from stdin with (format csv, header true)", f, size=1 << 20)
        raw.commit()
        elapsed = time.perf_counter() - start
        cur.execute("drop table public.bench_bare")
        raw.commit()
    finally:
        raw.close()
    return elapsed


def csflow_ingest(engine: sa.Engine, path: Path) -> tuple[float, int]:
    with engine.begin() as conn:
        conn.execute(sa.text("truncate raw.usage_events"))
    known = _known_accounts(engine)
    start = time.perf_counter()
    result = load_file(engine, ENTITIES["usage_events"], path, known)
    return time.perf_counter() - start, result.rows_loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts to generate (~500 events each)")
    parser.add_argument("--repeat", type=int, default=2, help="timed rounds of each")
    parser.add_argument("--data", type=Path, help="reuse a landing folder instead of generating one")
    args = parser.parse_args()

    # Outside pytest-style 0700 trees: the embedded server may run as its own user.
    work = Path(tempfile.mkdtemp(prefix="csflow-bench-"))
    landing = args.data or work / "landing"
    if not args.data:
        start = time.perf_counter()
        counts = generate(landing, accounts=args.accounts, seed=1, as_of=date(2026, 3, 31))
        print(f"generated {counts['usage_events']:,} usage events in {time.perf_counter() - start:.1f}s")
    path = landing / "usage_events.csv"
    size_mb = path.stat().st_size / 1e6

    settings = load_settings()
    if settings.uses_embedded_warehouse:
        settings = Settings(state_dir=work / "state")
    with open_warehouse(settings) as warehouse:
        engine = warehouse.engine()
        load_file(engine, ENTITIES["accounts"], landing / "accounts.csv")
        bare, ours, rows = [], [], 0
        for _ in range(args.repeat):
            bare.append(bare_copy(engine, path))
            elapsed, rows = csflow_ingest(engine, path)
            ours.append(elapsed)
        engine.dispose()
        print(f"warehouse: {warehouse.display}")

    shutil.rmtree(work, ignore_errors=True)
    b, o = statistics.median(bare), statistics.median(ours)
    print(f"usage_events.csv: {rows:,} rows, {size_mb:,.0f} MB")
    print(f"bare COPY (untyped): {b:6.1f}s  {rows / b:>12,.0f} rows/s")
    print(f"csflow ingest:       {o:6.1f}s  {rows / o:>12,.0f} rows/s")
    print(f"ratio (csflow / bare throughput): {b / o:.2f}  (target >= 0.50)")


if __name__ == "__main__":
    main()
