"""The `csflow` command: a thin layer over the plain functions of this package."""

from __future__ import annotations

import functools
import getpass
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from csflow.config import ConfigError, Settings, load_settings
from csflow.terminal import cells, files_table

if TYPE_CHECKING:
    from csflow.backtests import Backtest, SettingSummary
    from csflow.summary import RunSummary

# Quiet by default: no telemetry from dbt or Prefect's server.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Without a Prefect server, each command starts a temporary one; on a new machine
# it first creates its database, which takes longer than Prefect's 20 s default.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

app = typer.Typer(
    help=(
        "csflow: the nightly backbone of a Customer Success team.\n\n"
        "Loads landing files into PostgreSQL, builds dbt marts, validates them, and acts through "
        "playbooks: alerts, tasks and email. Start with `csflow demo`."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also show Prefect's and dbt's own logs (by default: progress and summaries).")
    ] = False,
) -> None:
    # Prefect's console handler (dbt's lines reach it through prefect-dbt): quiet unless asked.
    # The Prefect API still receives every log line, so the UI shows them.
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        os.environ.setdefault("DBT_QUIET", "true")  # dbt run outside Prefect (docs, signals, backtest): errors only

F = TypeVar("F", bound=Callable[..., Any])


def fail_line(message: object) -> None:
    """The one red line a failing command ends with."""
    err.print(f"[bold red]csflow:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def user_errors(fn: F) -> F:
    """Errors a user can cause become one red line and exit status 1, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from csflow.dbt import DbtFailed
        from csflow.ingest import FileUnusable
        from csflow.outbox import DeliveryIncomplete
        from csflow.warehouse import WarehouseBusy

        try:
            return fn(*args, **kwargs)
        except DeliveryIncomplete as exc:
            if exc.summary is not None:
                exc.summary.print(console)
            fail_line(exc)
            raise typer.Exit(1) from None
        except (ConfigError, FileUnusable, FileNotFoundError, ValueError, DbtFailed, WarehouseBusy) as exc:
            fail_line(exc)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    """The settings, after a warning for each CSFLOW_* variable that no setting reads."""
    from csflow.config import unknown_variables

    for warning in unknown_variables():
        err.print(f"[yellow]csflow: warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    return load_settings()


@contextmanager
def _progress(unit_bytes: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A Rich progress bar per entity, fed by (entity, done, total) callbacks."""
    columns: list[Any] = [TextColumn("{task.description:<18}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%")]
    if unit_bytes:
        columns.append(DownloadColumn())
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def update(entity: str, done: int, total: int) -> None:
            if entity not in tasks:
                tasks[entity] = bar.add_task(entity, total=max(total, 1))
            bar.update(tasks[entity], completed=done, total=max(total, 1))

        yield update


AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Logical date of the run, YYYY-MM-DD (default: today in CSFLOW_TIMEZONE)."),
]


@app.command()
@user_errors
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the landing files into.")] = Path("landing"),
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="How many customer accounts.")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same files.")] = 42,
    as_of: AsOf = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
) -> None:
    """Write a realistic synthetic landing folder (every file of the data contract).

    Example: `csflow generate --accounts 1000 --seed 7 --as-of 2026-03-31 --out landing/`
    """
    from csflow.demo import generate as run_generate
    from csflow.run_context import parse_as_of

    if fmt not in ("csv", "parquet"):
        raise ValueError(f"--format: {fmt!r} is not csv or parquet")
    day = parse_as_of(as_of, _settings())
    out.mkdir(parents=True, exist_ok=True)
    with _progress() as update:
        totals: dict[str, int] = {}

        def progress(entity: str, rows: int) -> None:
            totals[entity] = rows
            update(entity, rows, rows)

        counts = run_generate(
            out, accounts=accounts, seed=seed, as_of=day, fmt=fmt, progress=progress, not_after=datetime.now(UTC)
        )
    table = Table("file", "rows", title=Text(f"Landing files in {out} (as_of {day})"))
    for entity, rows in counts.items():
        table.add_row(*cells(f"{entity}.{fmt}", f"{rows:,}"))
    console.print(table)


def _ingest_table(report: Any) -> Table:
    table = files_table("Ingest", "replaced")
    for f in report.files:
        table.add_row(
            *cells(
                f.file,
                f"{f.rows_loaded:,}",
                f"{f.rows_rejected:,}",
                f"{f.rows_duplicate:,}",
                f"{f.rows_unknown_account:,}",
                f"{f.rows_replaced:,}",
                f.message if f.status == "rejected" else "",
            ),
            style="red" if f.status == "rejected" else None,
        )
    return table


@app.command()
@user_errors
def ingest(
    landing: Annotated[Path, typer.Argument(help="Landing folder with <entity>.csv or <entity>.parquet files.")],
) -> None:
    """Load a landing folder into schema `raw`; bad rows go to raw.load_rejects.

    Prints loaded/rejected counts per file, and exits non-zero only when a whole
    file is unusable. Example: `csflow ingest landing/`
    """
    from csflow.ingest import ingest_folder
    from csflow.warehouse import open_warehouse

    settings = _settings()
    with (
        open_warehouse(settings) as warehouse,
        warehouse.exclusive("ingest", settings.run_lock_wait_seconds),
        warehouse.connected() as engine,
        _progress(unit_bytes=True) as update,
    ):
        report = ingest_folder(engine, landing, update)
    console.print(_ingest_table(report))
    if report.absent:
        console.print(Text(f"absent (treated as unknown, not zero): {', '.join(report.absent)}"))
    if report.ignored:
        console.print(Text(f"ignored, not part of the data contract: {', '.join(report.ignored)}"))
    console.print("Rejected rows: [bold]select * from raw.current_load_rejects[/]")
    for f in report.unusable:
        fail_line(f.message)
    if report.unusable:
        raise typer.Exit(1)


def _run(as_of: str | None, landing: Path | None) -> RunSummary:
    from csflow.doctor import preflight
    from csflow.run_context import parse_as_of
    from flows.run_pipeline import run_pipeline

    settings = _settings()
    as_of_date = parse_as_of(as_of, settings)
    # The flow checks this too (deployments start there); here a mistake is one line before Prefect starts.
    preflight(settings, landing or settings.landing_dir)
    return run_pipeline(as_of=as_of_date, landing_dir=str(landing) if landing else None)


@app.command()
@user_errors
def run(
    as_of: AsOf = None,
    landing: Annotated[
        Path | None, typer.Option("--landing-dir", help="Landing folder (default: landing_dir / CSFLOW_LANDING_DIR).")
    ] = None,
) -> None:
    """Run the pipeline once for a logical date, as the nightly schedule does.

    Example: `csflow run --as-of 2026-03-31 --landing-dir landing/`
    """
    summary = _run(as_of, landing)
    summary.print(console)
    if summary.rejected_files:
        raise typer.Exit(1)


@app.command()
@user_errors
def demo(
    accounts: Annotated[int, typer.Option("--accounts", min=1, help="Size of the demo data set.")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the demo data.")] = 42,
    as_of: AsOf = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the demo landing files.")] = Path(
        "demo_data/landing"
    ),
) -> None:
    """Generate a demo data set, run the whole pipeline on it, and show where to look."""
    from csflow.dbt import relation_counts
    from csflow.demo import generate as run_generate
    from csflow.doctor import checked_playbooks
    from csflow.run_context import parse_as_of
    from csflow.warehouse import open_warehouse

    settings = _settings()
    day = parse_as_of(as_of, settings)
    checked_playbooks(settings)  # a mistake there is one line now, not after the data is generated
    console.rule("[bold]csflow demo")
    console.print(Text(f"1/3 Generating {accounts} accounts of demo data into {out} (as_of {day})"))
    out.mkdir(parents=True, exist_ok=True)
    with _progress() as update:
        run_generate(
            out,
            accounts=accounts,
            seed=seed,
            as_of=day,
            progress=lambda e, n: update(e, n, n),
            not_after=datetime.now(UTC),
        )
    console.print("2/3 Running the pipeline (ingest -> dbt build -> validate -> playbooks -> deliver) through Prefect")
    summary = _run(day.isoformat(), out)
    summary.print(console)
    console.print("3/3 Sending the CSM digests and the leadership KPI report")
    from flows.send_digests import send_digests

    digests = send_digests(as_of=day, csm_digests=True, kpi_report=True)
    console.print(
        f"{digests['csm_digests']} CSM digest(s), KPI report {'built' if digests['kpi_report'] else 'not built'}; "
        f"delivery: {digests['delivery']['sent']} sent"
    )
    with open_warehouse(settings) as warehouse, warehouse.connected() as engine:
        _tour(engine, day)
        counts = relation_counts(engine, ("marts", "ops"))
        where = warehouse.display
        csm = _busiest_csm(engine)
    table = Table("relation", "rows", title="Marts and operational tables")
    for name, rows in counts.items():
        table.add_row(*cells(name, f"{rows:,}"))
    console.print(table)
    console.rule("[bold green]Done")
    console.print(
        Text(
            f"Emails: open {settings.outbox_dir / 'index.html'} (every message, with links)\n"
            + (f"Data Docs: {summary.data_docs}\n" if summary.data_docs else "")
            + (f"KPI report: {digests['kpi_report_file']}\n" if digests.get("kpi_report_file") else "")
            + f"Warehouse: {where} (schemas raw, staging, intermediate, marts, ops)\n"
            f"Landing files: {out}; rejected rows: select * from raw.current_load_rejects\n"
            + (
                f"Workspace: run `csflow serve`, open {settings.link('signin')} and sign in as {csm}; "
                f"the sign-in link arrives in {settings.outbox_dir / 'index.html'}. "
                "Team leads and leadership see everything: CSFLOW_TEAM_LEADS=you@your.company csflow serve\n"
                if csm
                else ""
            )
            + "Try next: `csflow doctor`, `csflow outbox`, "
            f"`csflow run --as-of {day} --landing-dir {out}` (nothing is sent twice), "
            "`csflow outcome ACTION_ID won` (then see marts.playbook_effectiveness), "
            f"`csflow backfill {day - timedelta(days=6)} {day} --landing-dir {out}`, `csflow --help`"
        ),
        soft_wrap=True,
    )


def _busiest_csm(engine: Any) -> str | None:
    """The CSM with the most open tasks: who to sign in as on the demo data."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(
            sa.text("select lower(owner_email) from ops.tasks where status = 'open' group by 1 order by count(*) desc, 1 limit 1")
        ).scalar()


def _tour(engine: Any, as_of: date) -> None:
    """What a CS lead would look at first: renewals to prepare, accounts at risk, KPIs.

    Sized for 80 columns: ids, dates and figures never wrap or cut; names fold.
    """
    import sqlalchemy as sa

    from csflow.dbt import dbt_var
    from csflow.render import money

    base = dbt_var("base_currency")
    queries = {
        "Top renewals in the upsell window (2-4 months)": (
            "select account_id, account_name, end_date, days_to_renewal as days, arr_base "
            "from marts.audience_renewal_alert order by arr_base desc nulls last limit 5",
            {},
        ),
        "Red accounts": (
            "select h.account_id, a.account_name, round(h.health_score) as health, a.owner_email as csm "
            "from marts.account_health h join marts.account_directory a using (account_id) "
            "where h.as_of_date = :as_of and h.health_band = 'red' order by h.health_score limit 5",
            {"as_of": as_of},
        ),
        "KPIs, last 6 months (* partial)": (
            "select to_char(month, 'YYYY-MM') || case when is_complete_month then '' else '*' end as month, "
            "active_accounts_start as active, churned_accounts as churned, "
            "to_char(100 * logo_retention_rate, 'FM990.0') || '%' as logo, "
            "to_char(100 * gross_revenue_retention, 'FM990.0') || '%' as grr, "
            "to_char(100 * net_revenue_retention, 'FM990.0') || '%' as nrr, "
            "round(nps) as nps, round(csat_avg, 1) as csat "
            "from marts.kpi_monthly order by month desc limit 6",
            {},
        ),
    }
    with engine.connect() as conn:
        for title, (sql, params) in queries.items():
            result = conn.execute(sa.text(sql), params)
            table = Table(title=title)
            columns = list(result.keys())
            for name in columns:
                if name == "arr_base":
                    table.add_column(f"ARR ({base})", justify="right", no_wrap=True)
                elif name == "account_name":
                    table.add_column("account", overflow="fold", ratio=1)
                else:
                    table.add_column(name, no_wrap=True, justify="left" if name in ("account_id", "month", "csm") else "right")
            for row in result.mappings():
                values = [money(v, base) if k == "arr_base" else v for k, v in row.items()]
                table.add_row(*cells(*values))
            console.print(table)


@app.command()
@user_errors
def digest(
    as_of: AsOf = None,
    kpi_report: Annotated[
        bool, typer.Option("--kpi-report/--no-kpi-report", help="Also build the weekly leadership KPI report.")
    ] = True,
) -> None:
    """Build and queue the CSM digests (and the leadership KPI report); `csflow send` delivers them.

    Each CSM gets one digest per day, only when there is something to act on.
    Example: `csflow digest --as-of 2026-03-31 && csflow send`
    """
    from csflow.digests import build_digests
    from csflow.run_context import parse_as_of
    from csflow.warehouse import open_warehouse

    settings = _settings()
    day = parse_as_of(as_of, settings)
    with (
        open_warehouse(settings) as warehouse,
        warehouse.exclusive(f"digests {day}", settings.run_lock_wait_seconds),  # not while a run rebuilds the marts
        warehouse.connected() as engine,
    ):
        report = build_digests(engine, settings, day, include_kpi_report=kpi_report)
    console.print(
        f"{report.csm_digests} CSM digest(s) built ({report.csms_with_nothing} CSM(s) had nothing to act on), "
        f"{report.queued} message(s) newly queued"
    )
    if report.kpi_report_file:
        console.print(Text(f"KPI report: {report.kpi_report_file}"))


@app.command()
@user_errors
def send(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be sent; send and claim nothing.")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Send at most this many messages.")] = None,
) -> None:
    """Drain the outbox through the configured email backend (file, smtp or sendgrid).

    Safe to repeat: a message is sent once. Messages whose fate is unknown after a
    crash are reported, not resent; see `csflow outbox --status unknown`.
    Example: `CSFLOW_EMAIL_BACKEND=sendgrid csflow send`
    """
    from csflow.mailers import deliver_outbox
    from csflow.outbox import DeliveryIncomplete, outbox_counts, pending_messages
    from csflow.warehouse import open_warehouse

    settings = _settings()
    with open_warehouse(settings) as warehouse, warehouse.connected() as engine:
        if dry_run:
            table = Table("id", "to", "subject", "kind", title="Would send (dry run)")
            for m in pending_messages(engine, limit or 50):
                table.add_row(*cells(m.message_id, m.to_email, m.subject, m.kind))
            console.print(table)
            console.print(f"pending in total: {outbox_counts(engine)['pending']}")
            return
        total = outbox_counts(engine)["pending"]
        with _progress() as update:
            report = deliver_outbox(engine, settings, limit=limit, progress=lambda n: update("sending", n, total))
    console.print(Text(f"{settings.email_backend}: {report.line()}"))
    if settings.email_backend == "file":
        console.print(Text(f"open {settings.outbox_dir / 'index.html'}"))
    if report.problem():
        raise DeliveryIncomplete(report)


@app.command()
@user_errors
def outbox(
    status: Annotated[
        str | None, typer.Option("--status", help="Only messages in this status (pending, sent, failed, unknown...).")
    ] = None,
    resolve: Annotated[
        tuple[int, str] | None,
        typer.Option(
            "--resolve",
            help="After checking the provider, settle an unknown message: `--resolve ID sent` or `--resolve ID pending`.",
        ),
    ] = None,
    requeue_failed: Annotated[
        bool,
        typer.Option(
            "--requeue-failed", help="After fixing what made them fail (a key, a password), send failed messages again."
        ),
    ] = False,
) -> None:
    """Show the outbox: counts per status and the latest messages.

    Example: `csflow outbox --status unknown`, then `csflow outbox --resolve 42 sent`.
    """
    import sqlalchemy as sa

    from csflow.outbox import STATUSES, outbox_counts, resolve_unknown
    from csflow.outbox import requeue_failed as requeue
    from csflow.warehouse import open_warehouse

    if status is not None and status not in STATUSES:
        raise ValueError(f"--status: {status!r} is not one of {', '.join(STATUSES)}")
    with open_warehouse(_settings()) as warehouse, warehouse.connected() as engine:
        if resolve:
            resolve_unknown(engine, resolve[0], resolve[1])
            console.print(f"message {resolve[0]} marked {escape(resolve[1])}")
        if requeue_failed:
            console.print(f"{requeue(engine)} failed message(s) back to pending; `csflow send` sends them")
        counts = outbox_counts(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select message_id, status, to_email, subject, attempts, coalesce(last_error, provider_message_id, '') "
                    "from ops.outbox where (cast(:status as text) is null or status = :status) "
                    "order by message_id desc limit 30"
                ),
                {"status": status},
            ).all()
    console.print("  ".join(f"{k}: {v}" for k, v in counts.items()))
    table = Table("id", "status", "to", "subject", "attempts", "detail")
    for row in rows:
        table.add_row(*cells(*row))
    console.print(table)


@app.command()
@user_errors
def outcome(
    action_id: Annotated[
        int | None,
        typer.Argument(help="The firing's action_id (ops.playbook_actions; shown in the run's firings table)."),
    ] = None,
    result: Annotated[str | None, typer.Argument(help="won, lost, no_response or in_progress.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="What happened, in a few words.")] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Import an outcomes CSV: action_id,outcome[,note][,recorded_at]."),
    ] = None,
) -> None:
    """Record what came of a playbook firing; the playbook_effectiveness mart counts it.

    Examples: `csflow outcome 42 won --note "upgraded to Enterprise"`, or
    `csflow outcome --file outcomes.csv` (bad rows are listed with their line
    and reason; good rows are recorded; exit status 1 if any row was rejected).
    An outcomes.csv in the landing folder is imported by every pipeline run.
    """
    from csflow.outcomes import OUTCOMES, import_outcomes, set_outcome
    from csflow.warehouse import open_warehouse

    if file is None and (action_id is None or result is None):
        raise ValueError(f"give ACTION_ID and an outcome ({', '.join(OUTCOMES)}), or --file outcomes.csv")
    if file is not None and action_id is not None:
        raise ValueError("give either ACTION_ID OUTCOME or --file, not both")
    with open_warehouse(_settings()) as warehouse, warehouse.connected() as engine:
        if file is None:
            with engine.begin() as conn:
                set_outcome(conn, action_id, result or "", f"cli:{getpass.getuser()}", note)
            console.print(f"action {action_id}: outcome {result} recorded")
            return
        report = import_outcomes(engine, file)
    console.print(
        Text(
            f"{file}: {report.recorded} outcome(s) recorded, {report.unchanged} unchanged, {len(report.rejects)} rejected"
        )
    )
    for line, reason in report.rejects:
        err.print(f"[red]{escape(str(file))}:{line}:[/] {escape(reason)}", highlight=False, soft_wrap=True)
    if report.rejects:
        raise typer.Exit(1)


@app.command()
@user_errors
def docs() -> None:
    """Build the dbt project's documentation (models, columns, tests, lineage) as one HTML file
    that opens from disk, with the warehouse's own column types (`dbt docs generate --static`).

    Example: `csflow docs`, then open the file it names.
    """
    import shutil

    from csflow.dbt import run_dbt
    from csflow.warehouse import open_warehouse

    settings = _settings()
    with open_warehouse(settings) as warehouse:
        run_dbt(warehouse, settings, ["docs", "generate", "--static"], use_prefect=False)
    built = settings.state_dir / "dbt" / "target" / "static_index.html"
    out = settings.state_dir.resolve() / "docs" / "dbt.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, out)
    console.print(Text(f"dbt docs: {out}"))
    data_docs = settings.state_dir.resolve() / "data_docs" / "index.html"
    if data_docs.exists():
        console.print(Text(f"Data Docs of the latest run: {data_docs}"))


SQL_TABLE_ROWS = 200  # rows a query prints as a table; --csv prints them all


@app.command()
@user_errors
def sql(
    query: Annotated[str | None, typer.Argument(help="The SQL to run; without it, an interactive psql prompt.")] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print every row as CSV instead of a table.")] = False,
) -> None:
    """Query the warehouse, starting the embedded PostgreSQL if that is the warehouse.

    Example: `csflow sql "select * from marts.kpi_monthly order by month"`;
    `csflow sql` alone opens psql (the embedded server's own, or yours) on it.
    """
    import csv
    import sys

    from csflow.warehouse import open_warehouse, psql_command

    settings = _settings()
    with open_warehouse(settings) as warehouse:
        if query is None:
            import subprocess

            command, env = psql_command(warehouse)
            raise typer.Exit(subprocess.call(command, env={**os.environ, **env}))
        import sqlalchemy as sa

        with warehouse.connected() as engine, engine.begin() as conn:
            try:
                result = conn.exec_driver_sql(query)
            except sa.exc.DBAPIError as exc:  # the database's own words, on one line
                raise ValueError(f"sql: {' '.join(str(exc.orig).split())}") from None
            if not result.returns_rows:
                console.print(f"{result.rowcount} row(s) affected")
                return
            columns = list(result.keys())
            if as_csv:
                writer = csv.writer(sys.stdout)
                writer.writerow(columns)
                writer.writerows(result)
                return
            rows = result.fetchmany(SQL_TABLE_ROWS + 1)
    table = Table()
    for column in columns:
        table.add_column(Text(column), overflow="fold")
    for row in rows[:SQL_TABLE_ROWS]:
        table.add_row(*cells(*row))
    console.print(table)
    more = "; more not shown, use --csv for all" if len(rows) > SQL_TABLE_ROWS else ""
    console.print(f"{min(len(rows), SQL_TABLE_ROWS)} row(s){more}")


@app.command()
@user_errors
def backfill(
    start: Annotated[str, typer.Argument(help="First date, YYYY-MM-DD.")],
    end: Annotated[str, typer.Argument(help="Last date, YYYY-MM-DD (today at the latest).")],
    landing: Annotated[
        Path | None, typer.Option("--landing-dir", help="Landing folder (default: landing_dir / CSFLOW_LANDING_DIR).")
    ] = None,
    fire_past_dates: Annotated[
        bool,
        typer.Option(
            "--fire-past-dates",
            help="Also fire the plays of past dates: email customers and CSMs about occasions that may have passed.",
        ),
    ] = False,
) -> None:
    """Run the pipeline for every date from START to END, oldest first.

    Past dates build marts and KPI history as the nightly runs would have,
    but hold every play (no alerts, tasks or email about days gone by;
    --fire-past-dates fires them): occasions still current fire on today's
    run. Safe to repeat: nothing fires or is sent twice.
    Example: `csflow backfill 2026-03-01 2026-03-31 --landing-dir landing/`
    """
    from flows.backfill import backfill as backfill_flow
    from flows.backfill import backfill_dates

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise ValueError(f"backfill: dates must be YYYY-MM-DD, got {start!r} and {end!r}") from None
    backfill_dates(first, last, datetime.now(_settings().tz).date())  # a bad range fails here, before Prefect starts
    rows = backfill_flow(
        start=first, end=last, landing_dir=str(landing) if landing else None, fire_past_dates=fire_past_dates
    )
    table = Table("as_of", "gate", "fired", "held (past date)", "sent", "seconds", title="Backfill")
    for r in rows:
        table.add_row(
            *cells(
                r["as_of"],
                "open" if r["gate_open"] else "closed",
                r["fired"],
                r["held_past_date"],
                r["sent"],
                f"{r['seconds']:.1f}",
            ),
            style=None if r["gate_open"] else "red",
        )
    console.print(table)


signals_app = typer.Typer(help="The daily signal history (marts.account_signals_daily).", no_args_is_help=True)
app.add_typer(signals_app, name="signals")


def _day(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{option}: {value!r} is not a date like 2026-03-31") from None


@signals_app.command("backfill")
@user_errors
def signals_backfill(
    first: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    last: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (the latest run's as_of at the latest).")],
    with_health: Annotated[
        bool,
        typer.Option(
            "--with-health",
            help="Also build account_health every 4 weeks back from the latest run, to judge the health score "
            "against churn (a dbt run per day: minutes).",
        ),
    ] = False,
) -> None:
    """Build the daily signals of every account for past days, in one set-based pass.

    The nightly run adds one day; this fills history for backtests and the
    churn model. Each day sees only data on or before it. Safe to repeat: the
    days are replaced. Example: `csflow signals backfill --from 2025-04-01 --to 2026-03-31`
    """
    from csflow.signals import build_signal_history
    from csflow.warehouse import open_warehouse

    settings = _settings()
    start, end = _day("--from", first), _day("--to", last)
    started = time.monotonic()
    with (
        open_warehouse(settings) as warehouse,
        warehouse.exclusive("signals backfill", settings.run_lock_wait_seconds),
        console.status(f"building signals for {start} to {end}"),
    ):
        history = build_signal_history(warehouse, settings, start, end, with_health)
    console.print(
        Text(
            f"account_signals_daily: {history.rows:,} rows for {history.accounts:,} accounts, "
            f"{start} to {end}, in {time.monotonic() - started:.0f} s"
            + (f"; account_health for {len(history.health_days)} day(s)" if with_health else "")
        )
    )


model_app = typer.Typer(help="The churn-risk model (marts.churn_risk) and its published quality.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("train")
@user_errors
def model_train(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Train on the history up to this day (default: the latest run's as_of).")
    ] = None,
) -> None:
    """Train the churn-risk model on the signal history, publish its model card, and score as_of.

    Observations are weekly; each is labelled by whether the account's
    contract ended in churn within churn_horizon_days. Quality is measured on
    the most recent churn_model_validation_days of labelled history, which
    training does not see. With fewer churners than churn_model_min_churners
    nothing is published. Needs the signal history (`csflow signals backfill`).
    Example: `csflow model train`
    """
    from csflow.churn import train
    from csflow.warehouse import open_warehouse

    settings = _settings()
    day = _day("--as-of", as_of) if as_of else None
    with (
        open_warehouse(settings) as warehouse,
        warehouse.exclusive("model train", settings.run_lock_wait_seconds),
        console.status("training the churn-risk model"),
    ):
        trained = train(warehouse, settings, day)
    card = trained.card
    console.print(
        Text(
            f"{trained.version}: {card.train_observations:,} training observations ({card.train_churners} churners, "
            f"{card.train_from} to {card.train_to}), {card.validation_observations:,} held out "
            f"({card.validation_churners} churners, {card.validation_from} to {card.validation_to})"
        )
    )
    if card.status != "published":
        raise ValueError(f"model: {card.message}")

    def fmt(value: float | None, spec: str = ".3f") -> str:
        return "-" if value is None else format(value, spec)

    table = Table("measure", "value", "what it says", title="Churn-risk model, on held-out time", box=box.SIMPLE_HEAD)
    for row in (
        ("AUC", fmt(card.auc), "ranks a churner above a stayer this often (0.5: a coin)"),
        ("PR-AUC", fmt(card.pr_auc), f"precision over recall; the base rate is {fmt(card.base_rate)}"),
        ("Brier", fmt(card.brier, ".4f"), f"squared error of the probabilities; base rate's: {fmt(card.brier_base_rate, '.4f')}"),
        ("top-decile lift", fmt(card.top_decile_lift, ".1f"), "churn rate in the riskiest tenth / overall"),
        ("health AUC", fmt(card.health_auc), f"the health score's, on {card.health_observations:,} of the same observations"),
    ):
        table.add_row(*cells(*row))
    console.print(table)
    drivers = ", ".join(f"{name} {weight:+.2f}" for name, weight in list(card.coefficients.items())[:5])
    console.print(Text(f"Strongest drivers (log-odds per standard deviation): {drivers}"))
    console.print(Text("Scores: marts.churn_risk; what goes with churn: marts.churn_drivers (association, not cause)"))


@app.command()
@user_errors
def backtest(
    play: Annotated[str, typer.Option("--play", help="The play whose rule to replay: usage_decline, inquiry_surge or high_interest.")],
    first: Annotated[str, typer.Option("--from", help="First day of firings, YYYY-MM-DD.")],
    last: Annotated[str, typer.Option("--to", help="Last day of firings, YYYY-MM-DD.")],
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="A dbt var and the values to try, e.g. usage_decline_min_drop=0.2,0.3 (repeatable)."),
    ] = None,
    horizon: Annotated[
        int | None, typer.Option("--horizon", help="Days after a firing in which churn or renewal counts (default churn_horizon_days: 90).")
    ] = None,
) -> None:
    """Replay a play's rule over the signal history: what would it have caught, how early, at what cost?

    For each setting: firings, how many of those accounts churned, renewed or
    expanded within the horizon (precision), the share of all churners it
    warned about ahead of time (recall) and the median lead time. Rows go to
    marts.play_backtests; an HTML report with charts to the state folder.
    Needs the signal history (`csflow signals backfill`) for the days.
    Example: `csflow backtest --play usage_decline --set usage_decline_min_drop=0.2,0.3 --from 2025-04-01 --to 2025-12-31`
    """
    from csflow.backtests import run_backtest, write_report
    from csflow.warehouse import open_warehouse

    settings = _settings()
    start, end = _day("--from", first), _day("--to", last)
    with (
        open_warehouse(settings) as warehouse,
        warehouse.exclusive("backtest", settings.run_lock_wait_seconds),
        console.status(f"backtesting {play}"),
    ):
        result = run_backtest(warehouse, settings, play, sets or [], start, end, horizon)
    if play == "health_score":
        _print_health_backtest(result)
    else:
        _print_play_backtest(result)
    report = write_report(settings.state_dir.resolve() / "reports", result)
    console.print(Text(f"report: {report}"))


def _print_health_backtest(result: Backtest) -> None:
    for summary in result.summaries:
        _print_health_setting(result, summary)


def _print_health_setting(result: Backtest, summary: SettingSummary) -> None:
    console.print(
        Text(f"Health score ({summary.setting}) against churn within {result.horizon} days, {result.first} to {result.last}")
    )
    table = Table("month", "observations", "AUC", box=box.SIMPLE_HEAD)
    aucs = dict(summary.auc_by_month)
    for month, observed in summary.months:
        if not observed:  # a month that only has churners in it (they count below)
            continue
        table.add_row(*cells(f"{month:%Y-%m}", f"{observed:,}", f"{aucs[month]:.3f}" if month in aucs else "-"))
    console.print(table)
    median = summary.median_auc
    console.print(
        Text(
            f"Median monthly AUC {'-' if median is None else f'{median:.3f}'} (0.5 is a coin; above it churners score "
            f"lower). Of {summary.churners} churners, {summary.churners_red} were red and {summary.churners_yellow} "
            f"yellow {result.horizon} days before their contract ended."
        )
    )


def _print_play_backtest(result: Backtest) -> None:
    play, start, end = result.play, result.first, result.last
    # No column borders and short headers: eight columns fit 80 with the setting whole.
    table = Table(
        title=f"Backtest of {play}, {start} to {end}, horizon {result.horizon} days",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("setting", overflow="fold")
    for name in ("fired", "judged", "churned", "precision", "churners", "recall", "lead d"):
        table.add_column(name, justify="right", no_wrap=True)
    for s in result.summaries:
        table.add_row(
            *cells(
                s.setting.replace(f"{play}_", "").replace(", ", "\n"),  # usage_decline_min_drop=0.2 -> min_drop=0.2
                f"{s.firings:,}",
                f"{s.judged:,}",
                f"{s.churned:,}",
                "-" if s.precision is None else f"{s.precision:.0%}",
                f"{s.churners:,}",
                "-" if s.recall is None else f"{s.recall:.0%}",
                "-" if s.median_lead_days is None else f"{s.median_lead_days:g}",
            )
        )
    console.print(table)


@app.command()
@user_errors
def migrate() -> None:
    """Bring the warehouse's own tables (schemas raw and ops) up to this version of csflow.

    Safe to repeat. Upgrading keeps everything in ops (firings, outcomes,
    tasks, outbox, validation history) and the kept history of the marts;
    back the database up first all the same. Runs wait for it.
    Example: `csflow migrate`
    """
    from csflow.schema import upgrade
    from csflow.warehouse import open_warehouse

    settings = _settings()
    with (
        open_warehouse(settings, check_schema=False) as warehouse,
        warehouse.exclusive("migrate", settings.run_lock_wait_seconds),
        warehouse.connected() as engine,
    ):
        before, after = upgrade(engine)
    console.print(
        f"warehouse tables: revision {after}" if before == after else f"warehouse tables: {before or 'none'} -> {after}"
    )


@app.command()
@user_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; keep 127.0.0.1 behind a reverse proxy.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8080,
) -> None:
    """Serve the CSM workspace: tasks, account pages, renewals, KPIs, and the links in email.

    CSMs sign in with a link emailed to their address (or through a single
    sign-on proxy's header, setting workspace_trusted_header). Links in email
    start at setting base_url, which should be where this server is reached,
    normally an https reverse proxy in front of 127.0.0.1:8080 (see docs/workspace.md).
    While workspace_secret or unsubscribe_secret is the example value it
    serves this machine only (loopback, with a loopback base_url).
    Example: `csflow serve --port 8080`
    """
    import sqlalchemy as sa
    import uvicorn

    from csflow.warehouse import open_warehouse
    from csflow.web import create_app, serving_refusal

    settings = _settings()
    refusal = serving_refusal(settings, host)
    if refusal:
        raise ConfigError(refusal)
    with open_warehouse(settings) as warehouse, warehouse.connected() as engine:
        with engine.connect() as conn:
            if conn.execute(sa.text("select to_regclass('marts.account_directory')")).scalar() is None:
                raise ValueError(f"{warehouse.display} has no marts yet: run `csflow run` (or `csflow demo`) first")
        console.print(
            Text(f"csflow workspace on http://{host}:{port} (links in email lead to {settings.base_url}); Ctrl+C stops it")
        )
        uvicorn.run(create_app(settings, engine), host=host, port=port, log_level="info", server_header=False)


@app.command()
@user_errors
def doctor() -> None:
    """Check the set-up: settings, warehouse, dbt, landing folder, playbooks, email, Prefect.

    Each line is ok, warn (works, but probably not what you meant) or FAIL (a
    run would fail); the exit status is 1 when anything fails.
    Example: `CSFLOW_EMAIL_BACKEND=sendgrid csflow doctor`
    """
    from csflow.config import PROJECT_DIR
    from csflow.doctor import run_checks

    checks = run_checks(load_settings(), PROJECT_DIR)  # its table lists unknown CSFLOW_* variables itself
    style = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}
    table = Table("check", "", "detail", title="csflow doctor")
    for c in checks:
        name, _, detail = cells(c.name, "", c.detail)
        table.add_row(name, style[c.status], detail)
    console.print(table)
    failed = [c for c in checks if c.status == "fail"]
    for c in failed:
        fail_line(c.detail)
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover - the console script calls app directly
    app()
