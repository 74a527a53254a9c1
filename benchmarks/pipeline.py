"""The whole nightly flow, stage by stage: a full run, a daily run, and a bare dbt build beside them.

    python benchmarks/pipeline.py --accounts 10000
    python benchmarks/pipeline.py --accounts 1000 --ab 2     # + 2 paired orchestrated/bare dbt builds
    python benchmarks/pipeline.py --database-url postgresql+psycopg2://csflow@db:5432/empty_db

Generates N accounts with csflow's generator (as of --as-of), then, on a fresh
warehouse (a throwaway embedded PostgreSQL, or the empty database given with
--database-url) and after a `dbt parse` (not counted: a nightly run's state
dir has its partial parse already), times:

1. a full run of the real `run_pipeline` flow for as_of, called as `csflow run`
   calls it: with no PREFECT_API_URL, Prefect starts a temporary local server
   (its database under a throwaway PREFECT_HOME; the server's start-up is timed
   on its own, before the run). Per stage from the summary's "timings", plus
   the wall time of the flow call (flow-run bookkeeping, artifacts, ...);
2. a bare `dbt build --full-refresh` (dbt's own dbtRunner, no Prefect) on the
   same warehouse, right after: same as_of and the incremental models rebuilt,
   so the same work as the full run's dbt stage (account_health keeps its
   history: it replaces as_of's rows instead);
3. a daily run for as_of + 1 day, after writing a small landing folder of the
   next day's events: as_of's usage events, web visits, email events and
   support tickets moved one day on, with new ids (as benchmarks/marts.py does
   for usage events; an entity with no row that day gets no file); then, for
   reference, a bare `dbt build` with nothing new: the floor of any daily build;
4. with --ab N, N rounds of the same `dbt build --full-refresh` bare and
   through PrefectDbtRunner in a flow, back to back: a paired measure of the
   orchestration overhead alone.

Email goes to the `file` backend in the work folder whatever csflow.yml says.
Next to each figure: the CPU that processes outside this benchmark used
meanwhile (the machine has 2 cores; tests running beside it skew the figures;
with --database-url, that server's CPU counts as outside) and the load average.

Targets: orchestrated dbt stage / bare dbt build <= 1.3; the full run at 10k
accounts under 300 s; the daily run under 20% of the full run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from csflow.summary import RunSummary

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STAGES = ("ingest", "dbt_build", "validate", "playbooks", "deliver")
# The next day's increment: entity -> the timestamp that places a row on a day, and its id column.
DAILY_ENTITIES = {
    "usage_events": ("occurred_at", "event_id"),
    "web_visits": ("visited_at", None),
    "email_events": ("occurred_at", None),
    "support_tickets": ("opened_at", "ticket_id"),
}
TARGET_RATIO = 1.3
TARGET_FULL_SECONDS = 300.0
TARGET_FULL_ACCOUNTS = 10_000
TARGET_DAILY_SHARE = 0.20
T = TypeVar("T")


class OtherLoad:
    """CPU used by processes that are not this benchmark's, sampled while a section runs.

    Ours: this process and its children (the Prefect server) and the embedded
    PostgreSQL (its postmaster and backends). Everything else, e.g. tests run
    beside the benchmark, is reported in cores (2.0 = both cores of this machine).
    """

    def __init__(self, postmaster_pid: int | None, interval: float = 0.5) -> None:
        import psutil

        self.psutil = psutil
        self.roots = [os.getpid()] + ([postmaster_pid] if postmaster_pid else [])
        self.interval = interval
        self._stop = threading.Event()
        self._seen: dict[int, float] = {}
        self.foreign_cpu = 0.0
        self.elapsed = 0.0
        self.load_before = self.load_after = 0.0

    def _ours(self) -> set[int]:
        pids = set()
        for pid in self.roots:
            try:
                proc = self.psutil.Process(pid)
                pids.add(pid)
                pids.update(p.pid for p in proc.children(recursive=True))
            except self.psutil.Error:
                pass
        return pids

    def _sample(self, count: bool) -> None:
        ours = self._ours()
        for proc in self.psutil.process_iter():
            try:
                cpu = proc.cpu_times()
            except self.psutil.Error:
                continue
            total = cpu.user + cpu.system
            if count and proc.pid not in ours:
                self.foreign_cpu += total - self._seen.get(proc.pid, 0.0)
            self._seen[proc.pid] = total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(count=True)

    def __enter__(self) -> OtherLoad:
        self.load_before = os.getloadavg()[0]
        self._sample(count=False)
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True, name="other-load")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(count=True)
        self.elapsed = time.perf_counter() - self._start
        self.load_after = os.getloadavg()[0]

    @property
    def cores(self) -> float:
        return self.foreign_cpu / self.elapsed if self.elapsed else 0.0

    def line(self) -> str:
        return f"other processes {self.cores:.2f} cores; load 1m {self.load_before:.1f} -> {self.load_after:.1f}"


def measured(
    label: str, load: Callable[[], OtherLoad], func: Callable[..., T], *args: Any, **kw: Any
) -> tuple[T, float, OtherLoad]:
    with load() as other:
        start = time.perf_counter()
        result = func(*args, **kw)
        elapsed = time.perf_counter() - start
    print(f"{label}: {elapsed:,.1f}s  ({other.line()})", flush=True)
    return result, elapsed, other


def write_next_day(engine: Any, as_of: date, timezone: str, folder: Path) -> dict[str, int]:
    """The next day's events: as_of's rows (days in `timezone`) moved one day on, with new ids.

    Entities with no row that day get no file.
    """
    from csflow.contract import ENTITIES

    folder.mkdir(parents=True, exist_ok=True)
    rows = {}
    raw = engine.raw_connection()
    try:
        for name, (day_column, id_column) in DAILY_ENTITIES.items():
            select = []
            for column in ENTITIES[name].columns:
                ident = f'"{column.name}"'
                if column.kind == "timestamp":
                    select.append(
                        f"to_char(({ident} + interval '1 day') at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                    )
                elif column.name == id_column:
                    select.append(f"'NEXT-' || {ident}")
                else:
                    select.append(ident)
            sql = (
                f"copy (select {', '.join(select)} from raw.{name} "
                f"where (\"{day_column}\" at time zone '{timezone}')::date = date '{as_of.isoformat()}') "
                "to stdout with (format csv, header false)"
            )
            path = folder / f"{name}.csv"
            with open(path, "w", encoding="utf-8") as f:
                f.write(",".join(ENTITIES[name].column_names) + "\n")
                raw.cursor().copy_expert(sql, f)
            with open(path, encoding="utf-8") as f:
                count = sum(1 for _ in f) - 1
            if count:
                rows[name] = count
            else:  # e.g. no email campaign that day: a file given empty would close the validation gate
                path.unlink()
    finally:
        raw.close()
    return rows


def print_run(title: str, summary: RunSummary, wall: float, other: OtherLoad) -> None:
    timings = summary.timings
    staged = sum(timings.get(s, 0.0) for s in STAGES)
    print()
    print(title)
    print(f"  {'stage':<22}{'seconds':>9}")
    for stage in STAGES:
        print(f"  {stage:<22}{timings.get(stage, float('nan')):9.1f}")
    print(f"  {'sum of stages':<22}{staged:9.1f}")
    print(f"  {'flow call (wall)':<22}{wall:9.1f}   Prefect outside the stages: {wall - staged:.1f}s")
    print(f"  dbt: {summary.dbt.summary()}")
    print(f"  gate {'open' if summary.gate_open else 'CLOSED'}; delivery: {summary.delivery.line()}; {other.line()}")


def stage_table(runs: list[tuple[str, RunSummary, float]]) -> None:
    """Seconds per stage, one column per run."""
    print(f"  {'stage (s)':<20}" + "".join(f"{label:>10}" for label, _, _ in runs))
    for stage in STAGES:
        print(f"  {stage:<20}" + "".join(f"{s.timings.get(stage, float('nan')):10.1f}" for _, s, _ in runs))
    print(f"  {'sum of stages':<20}" + "".join(f"{sum(s.timings.values()):10.1f}" for _, s, _ in runs))
    print(f"  {'flow call (wall)':<20}" + "".join(f"{wall:10.1f}" for _, _, wall in runs))


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts to generate (~500 usage events each)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 3, 31))
    parser.add_argument(
        "--data", type=Path, help="reuse a landing folder (generated for --as-of) instead of generating"
    )
    parser.add_argument(
        "--database-url", help="an EMPTY PostgreSQL database to use instead of a throwaway embedded one"
    )
    parser.add_argument("--threads", type=int, help="dbt threads (default: setting dbt_threads)")
    parser.add_argument("--ab", type=int, default=0, help="paired rounds of bare / orchestrated dbt build at the end")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (warehouse, dbt target, outbox)")
    args = parser.parse_args()
    data = args.data.resolve() if args.data else None

    # Outside pytest-style 0700 trees: the embedded server may run as its own user.
    work = Path(tempfile.mkdtemp(prefix="csflow-bench-pipeline-"))
    print(f"work folder: {work}")
    # Settings the flow reads itself (load_settings): a private state dir, file email, this warehouse.
    os.environ.update(
        {
            "CSFLOW_STATE_DIR": str(work / "state"),
            "CSFLOW_OUTBOX_DIR": str(work / "outbox"),
            "CSFLOW_EMAIL_BACKEND": "file",
            "CSFLOW_DATABASE_URL": args.database_url or "",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    # The temporary server starts slowly on a busy 2-core machine (Prefect's default wait is 20 s).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if args.threads:
        os.environ["CSFLOW_DBT_THREADS"] = str(args.threads)
    if not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_HOME"] = str(work / "prefect")  # the temporary server's database: fresh, thrown away
    os.chdir(ROOT)  # csflow.yml and playbooks.yml as `csflow run` finds them from the checkout

    # After the environment is set: Prefect reads its settings on import.
    import sqlalchemy as sa
    from prefect import flow
    from prefect.client.orchestration import get_client

    from csflow.config import load_settings
    from csflow.dbt import run_dbt
    from csflow.demo import generate
    from csflow.warehouse import open_warehouse
    from flows.run_pipeline import run_pipeline

    @flow(name="bench_dbt_build")
    def orchestrated_dbt(dbt_args: list[str]) -> float:
        """run_dbt as run_pipeline calls it (through PrefectDbtRunner), timed inside the flow."""
        settings = load_settings()
        with open_warehouse(settings) as warehouse:
            start = time.perf_counter()
            run_dbt(warehouse, settings, dbt_args)
            return time.perf_counter() - start

    try:
        landing = data or work / "landing"
        if not data:
            start = time.perf_counter()
            counts = generate(landing, accounts=args.accounts, seed=1, as_of=args.as_of)
            print(f"generate: {time.perf_counter() - start:,.1f}s  ({counts['usage_events']:,} usage events)")

        settings = load_settings()
        with open_warehouse(settings) as warehouse:
            engine = warehouse.engine()
            if not warehouse.embedded:
                with engine.connect() as conn:
                    used = conn.execute(sa.text("select 1 from pg_namespace where nspname = 'raw'")).first()
                if used:
                    raise SystemExit(f"{warehouse.display} already holds csflow schemas: give an empty database")
            postmaster = None
            if warehouse.pgdata:
                postmaster = int((warehouse.pgdata / "postmaster.pid").read_text().split()[0])
            print(f"warehouse: {warehouse.display}; dbt threads {settings.dbt_threads}")

            def load() -> OtherLoad:
                return OtherLoad(postmaster)

            # Not counted: a fresh state dir has no partial parse yet; a nightly run's has.
            measured("dbt parse (not counted)", load, run_dbt, warehouse, settings, ["parse"], use_prefect=False)
            with load() as server_load:
                start = time.perf_counter()
                with get_client(sync_client=True) as client:  # starts the temporary server when no API URL
                    client.api_healthcheck()
                    api = client.api_url
                server_start = time.perf_counter() - start
            print(f"Prefect API {api}: ready in {server_start:,.1f}s  ({server_load.line()})")

            full, full_wall, full_load = measured(
                "full run", load, run_pipeline, as_of=args.as_of, landing_dir=str(landing)
            )
            print_run(f"full run, as_of {args.as_of}, {args.accounts:,} accounts", full, full_wall, full_load)

            _, bare, bare_load = measured(
                "bare dbt build --full-refresh",
                load,
                run_dbt,
                warehouse,
                settings,
                ["build", "--full-refresh"],
                use_prefect=False,
            )

            next_day = args.as_of + timedelta(days=1)
            rows = write_next_day(engine, args.as_of, settings.timezone, work / "daily")
            print(f"daily landing for {next_day}: " + ", ".join(f"{n:,} {e}" for e, n in rows.items()))
            daily, daily_wall, daily_load = measured(
                "daily run", load, run_pipeline, as_of=next_day, landing_dir=str(work / "daily")
            )
            print_run(f"daily run, as_of {next_day}", daily, daily_wall, daily_load)
            _, floor, floor_load = measured(
                "bare dbt build, nothing new (not counted)",
                load,
                run_dbt,
                warehouse,
                settings,
                ["build"],
                use_prefect=False,
            )

            pairs = []
            for i in range(args.ab):
                _, b, b_load = measured(
                    f"A/B {i + 1}: bare dbt build --full-refresh",
                    load,
                    run_dbt,
                    warehouse,
                    settings,
                    ["build", "--full-refresh"],
                    use_prefect=False,
                )
                inner, o_wall, o_load = measured(
                    f"A/B {i + 1}: orchestrated dbt build --full-refresh (flow call)",
                    load,
                    orchestrated_dbt,
                    ["build", "--full-refresh"],
                )
                print(f"  inside the flow: {inner:,.1f}s; ratio {inner / b:.2f}")
                pairs.append((b, inner, b_load.cores, o_load.cores))
            engine.dispose()
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    orchestrated = full.timings["dbt_build"]
    ratio = orchestrated / bare
    share = daily_wall / full_wall
    print()
    print(f"{args.accounts:,} accounts; full run as_of {args.as_of}, daily run as_of {next_day}")
    stage_table([("full", full, full_wall), ("daily", daily, daily_wall)])
    print()
    print(f"Prefect server start-up:         {server_start:10.1f}s  (once per process; not in the runs)")
    print(f"full run (flow call):            {full_wall:10.1f}s  ({full_load.cores:.2f} other cores)", end="")
    if args.accounts >= TARGET_FULL_ACCOUNTS:
        print(f"  target < {TARGET_FULL_SECONDS:.0f}s at 10k accounts: {met(full_wall < TARGET_FULL_SECONDS)}")
    else:
        print(f"  (target < {TARGET_FULL_SECONDS:.0f}s is for 10k accounts)")
    print(f"  orchestrated dbt stage:        {orchestrated:10.1f}s")
    print(f"bare dbt build --full-refresh:   {bare:10.1f}s  ({bare_load.cores:.2f} other cores; same work)")
    print(f"orchestrated / bare dbt:         {ratio:10.2f}   target <= {TARGET_RATIO}: {met(ratio <= TARGET_RATIO)}")
    print(f"daily run (flow call):           {daily_wall:10.1f}s  ({daily_load.cores:.2f} other cores)")
    print(f"  orchestrated dbt stage:        {daily.timings['dbt_build']:10.1f}s")
    print(
        f"bare dbt build, nothing new:     {floor:10.1f}s  ({floor_load.cores:.2f} other cores; floor of a daily build)"
    )
    print(
        f"daily / full run:                {share:10.1%}   target < {TARGET_DAILY_SHARE:.0%}: "
        f"{met(share < TARGET_DAILY_SHARE)}"
    )
    for i, (b, o, b_cores, o_cores) in enumerate(pairs, 1):
        print(
            f"A/B {i}: bare {b:.1f}s ({b_cores:.2f} other cores), orchestrated {o:.1f}s "
            f"({o_cores:.2f} other cores), ratio {o / b:.2f}"
        )


if __name__ == "__main__":
    main()
