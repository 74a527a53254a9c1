"""The validation gate: one decision from two engines, each checking what it owns.

Great Expectations checks the raw inputs (`expectations/`); dbt's data tests
check the marts (dbt_project/, run by csflow.dbt.build_and_test). Both feed
`run_validation`: every check carries a severity, one failed *critical* check
(a dbt test with severity `error`) closes the gate, so no playbook acts on
customers and the data team is told; *warning* failures (dbt's `warn`) are
reported only. The outcome is returned as a `ValidationReport` and stored in
`ops.validation_runs` / `ops.validation_results`.

Design notes:
- GX runs against PostgreSQL with its SQL execution engine, so each check is
  an aggregate query in the database; no table is pulled into pandas.
- The GX context is ephemeral (in memory): nothing is written into the repo.
  The connection string reaches GX as `${CSFLOW_GX_URL}`, resolved from the
  context's runtime environment, so the password is neither in GX config nor
  in this process's environment (dbt and other children never see it).
- Data Docs are built later and separately (`build_data_docs`) from the GX
  results kept on the report: the gate decision never waits for HTML.
"""

from __future__ import annotations

import copy
import functools
import html
import importlib
import importlib.util
import json
import logging
import os
import posixpath
import re
import shutil
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from csflow.config import PROJECT_DIR
from csflow.dbt import DataTest
from csflow.schema import validation_results, validation_runs
from csflow.warehouse import Warehouse

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.data_context import AbstractDataContext

    from expectations import RunParams, SuiteSpec

log = logging.getLogger(__name__)

GX_URL_VARIABLE = "CSFLOW_GX_URL"
DATASOURCE_NAME = "warehouse"
DOCS_SITE_NAME = "csflow"
SAMPLE_SIZE = 5  # sample values kept per failed expectation
# The gate's two severities, and dbt's name for each.
CRITICAL = "critical"  # closes the gate: no playbook acts on customers, the data team is told
WARNING = "warning"  # reported only
SEVERITIES = (CRITICAL, WARNING)
DBT_SEVERITY = {"error": CRITICAL, "warn": WARNING}


# --------------------------------------------------------------------------
# The report


@dataclass
class ExpectationResult:
    """One expectation's outcome, flattened for people and the ops tables."""

    suite: str
    table: str
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_unique
    column: str | None
    severity: str  # critical | warning
    success: bool
    description: str
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    sample: list[Any] = field(default_factory=list)
    error: str | None = None  # the check itself raised (counted as failed: the gate fails closed)

    def headline(self) -> str:
        """One line: what failed and how much."""
        where = f"{self.table}.{self.column}" if self.column else self.table
        if self.error:
            amount = f"could not run: {self.error}"
        elif self.unexpected_count is not None:
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            amount = f"{self.unexpected_count} unexpected{pct}"
        else:
            amount = f"observed {self.observed_value}"
        return f"{where}: {self.description}: {amount}"


@dataclass
class SuiteResult:
    name: str
    table: str
    success: bool
    skipped: bool = False
    skip_reason: str = ""
    seconds: float = 0.0
    expectations: list[ExpectationResult] = field(default_factory=list)

    def count(self, severity: str) -> int:
        return sum(1 for e in self.expectations if not e.success and e.severity == severity)


@dataclass
class ValidationReport:
    run_id: str
    as_of: date
    validated_at: datetime
    suites: list[SuiteResult]
    seconds: float = 0.0
    # Rows stamped after as_of per entity: not used by this run, not an error.
    after_as_of: dict[str, int] = field(default_factory=dict)
    # The raw GX results, for Data Docs; not stored, not compared.
    gx_results: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def results(self) -> list[ExpectationResult]:
        return [e for s in self.suites for e in s.expectations]

    @property
    def failures(self) -> list[ExpectationResult]:
        return [e for e in self.results if not e.success]

    @property
    def critical_failures(self) -> list[ExpectationResult]:
        return [e for e in self.failures if e.severity == CRITICAL]

    @property
    def warning_failures(self) -> list[ExpectationResult]:
        return [e for e in self.failures if e.severity == WARNING]

    @property
    def within_tolerance(self) -> list[ExpectationResult]:
        """Passed thanks to `mostly` (e.g. a few unknown-account rows): worth a mention."""
        return [e for e in self.results if e.success and (e.unexpected_count or 0) > 0]

    @property
    def gate_open(self) -> bool:
        """Playbooks may act only when no critical expectation failed."""
        return not self.critical_failures

    @property
    def suites_run(self) -> list[SuiteResult]:
        return [s for s in self.suites if not s.skipped]

    @property
    def suites_failed(self) -> list[SuiteResult]:
        return [s for s in self.suites_run if not s.success]

    @property
    def suites_skipped(self) -> list[SuiteResult]:
        return [s for s in self.suites if s.skipped]

    def suite(self, name: str) -> SuiteResult:
        return next(s for s in self.suites if s.name == name)

    def _headline(self) -> str:
        gate = "OPEN" if self.gate_open else "CLOSED"
        return (
            f"Validation gate {gate} for run {self.run_id} (as_of {self.as_of.isoformat()}): "
            f"{len(self.suites_run)} suites run, {len(self.suites_failed)} failed, "
            f"{len(self.suites_skipped)} skipped; {len(self.critical_failures)} critical and "
            f"{len(self.warning_failures)} warning failures ({self.seconds:.1f} s)."
        )

    def summary_markdown(self) -> str:
        """A short markdown summary for the run summary / Prefect artifact."""
        lines = [f"**{self._headline()}**", "", "| suite | table | result | critical | warning | seconds |"]
        lines.append("|---|---|---|---:|---:|---:|")
        for s in self.suites:
            if s.skipped:
                lines.append(f"| {s.name} | {s.table} | skipped: {_md(s.skip_reason)} | | | |")
            else:
                result = "passed" if s.success else "**failed**"
                lines.append(
                    f"| {s.name} | {s.table} | {result} | {s.count(CRITICAL)} | {s.count(WARNING)} | {s.seconds:.2f} |"
                )
        if self.failures:
            lines += ["", "| severity | suite | check | column | unexpected | sample |", "|---|---|---|---|---:|---|"]
            for e in sorted(self.failures, key=lambda e: (e.severity != CRITICAL, e.suite)):
                amount = e.unexpected_count if e.unexpected_count is not None else (e.error or e.observed_value)
                lines.append(
                    f"| {e.severity} | {e.suite} | {_md(e.description)} | {_md(e.column or '')} | "
                    f"{_md(str(amount))} | {_md(_sample_text(e.sample))} |"
                )
        if self.after_as_of:
            lines += ["", f"Rows after as_of, not used by this run (not an error): {self.after_as_of_text()}"]
        return "\n".join(lines)

    def after_as_of_text(self) -> str:
        return ", ".join(f"{entity} {n:,}" for entity, n in sorted(self.after_as_of.items()))

    def failures_text(self) -> str:
        """Plain text for the data team's email: what failed, how much, examples."""
        lines = [self._headline()]
        if not self.gate_open:
            lines.append("Playbooks did not act on customers in this run.")
        for title, items in (
            ("Critical failures (gate closed)", self.critical_failures),
            ("Warnings", self.warning_failures),
            ("Within tolerance (passed, but not clean)", self.within_tolerance),
        ):
            if not items:
                continue
            lines += ["", f"{title}:"]
            for e in items:
                lines.append(f"- [{e.suite}] {e.headline()}")
                if e.sample:
                    lines.append(f"    e.g. {_sample_text(e.sample)}")
        if self.suites_skipped:
            lines += ["", "Skipped: " + ", ".join(f"{s.name} ({s.skip_reason})" for s in self.suites_skipped)]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (flow return value, artifacts)."""
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "validated_at": self.validated_at.isoformat(),
            "gate_open": self.gate_open,
            "seconds": round(self.seconds, 3),
            "after_as_of": self.after_as_of,
            "suites": [
                {
                    "name": s.name,
                    "table": s.table,
                    "success": s.success,
                    "skipped": s.skipped,
                    "skip_reason": s.skip_reason,
                }
                for s in self.suites
            ],
            "failures": [
                {
                    "suite": e.suite,
                    "table": e.table,
                    "expectation": e.expectation,
                    "column": e.column,
                    "severity": e.severity,
                    "description": e.description,
                    "unexpected_count": e.unexpected_count,
                    "sample": e.sample,
                    "error": e.error,
                }
                for e in self.failures
            ],
        }


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _sample_text(sample: list[Any]) -> str:
    return ", ".join(json.dumps(v, default=str) if not isinstance(v, str) else v for v in sample)


# --------------------------------------------------------------------------
# Suites and GX plumbing


def load_suites() -> ModuleType:
    """The `expectations` package at the project root (not an installed package)."""
    try:
        return importlib.import_module("expectations")
    except ModuleNotFoundError:
        init = PROJECT_DIR / "expectations" / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            "expectations", init, submodule_search_locations=[str(init.parent)]
        )
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules["expectations"] = module
        spec.loader.exec_module(module)
        return module


def _gx_context(runtime_environment: dict[str, str] | None = None, docs_dir: Path | None = None) -> AbstractDataContext:
    """An in-memory GX context: no files, no analytics, no progress bars."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites: dict[str, Any] = {}
    if docs_dir is not None:
        sites[DOCS_SITE_NAME] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config, runtime_environment=runtime_environment)


def latest_loads(engine: sa.Engine) -> dict[str, Any]:
    """The latest finished raw.loads row per entity: the files the latest ingest was given."""
    from csflow.ingest import FINISHED

    suites = load_suites()
    with engine.connect() as conn:
        if conn.execute(sa.text("select to_regclass('raw.loads')")).scalar() is None:
            return {}
        rows = conn.execute(
            sa.text(
                "select distinct on (entity) entity, load_id, file_name, status, started_at "
                f"from raw.loads where status in {FINISHED} order by entity, load_id desc"
            )
        ).all()
    return {r.entity: suites.LatestLoad(int(r.load_id), r.file_name, r.status, r.started_at) for r in rows}


def rows_after_as_of(engine: sa.Engine, as_of: date, timezone: str) -> dict[str, int]:
    """Rows stamped after the end of as_of (in the run's time zone), per entity.

    They are not an error (a rerun of a past date over a later export has
    them) and the marts do not use them; the run summary counts them.
    """
    from csflow.contract import ENTITIES

    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for entity in ENTITIES.values():
            if entity.stamped_by is None or conn.execute(
                sa.text("select to_regclass(:t)"), {"t": f"raw.{entity.name}"}
            ).scalar() is None:
                continue
            n = conn.execute(
                sa.text(
                    f'select count(*) from raw.{entity.name} where "{entity.stamped_by}" >= '
                    "(cast(:next_day as timestamp) at time zone :tz)"
                ),
                {"next_day": as_of + timedelta(days=1), "tz": timezone},
            ).scalar_one()
            if n:
                counts[entity.name] = int(n)
    return counts


def _existing_tables(engine: sa.Engine, tables: Iterable[str]) -> set[str]:
    names = sorted(set(tables))
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("select t from unnest(cast(:names as text[])) t where to_regclass(t) is not null"),
            {"names": names},
        ).scalars()
        return set(found)


def _column_of(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_list"):
        return ", ".join(kwargs["column_list"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    return None


def _describe(expectation_type: str, kwargs: dict[str, Any]) -> str:
    """A readable name for an expectation that has no description of its own."""
    text = expectation_type.removeprefix("expect_").replace("_", " ")
    parts = []
    for key in ("min_value", "max_value"):
        if kwargs.get(key) is not None:
            bound = kwargs[key]
            strict = kwargs.get("strict_min" if key == "min_value" else "strict_max")
            op = {"min_value": ">" if strict else ">=", "max_value": "<" if strict else "<="}[key]
            parts.append(f"{op} {bound.isoformat() if hasattr(bound, 'isoformat') else bound}")
    if kwargs.get("value_set") is not None:
        parts.append("in " + ", ".join(str(v) for v in kwargs["value_set"]))
    if kwargs.get("regex"):
        parts.append(f"~ {kwargs['regex']}")
    if kwargs.get("or_equal"):
        parts.append("or equal")
    if kwargs.get("mostly") not in (None, 1, 1.0):
        parts.append(f"mostly {kwargs['mostly']}")
    if kwargs.get("row_condition"):
        parts.append(f"where {kwargs['row_condition']}")
    return text + (f" ({'; '.join(parts)})" if parts else "")


def _exception_message(info: dict[str, Any] | None) -> str | None:
    """GX reports errors as one dict, or one per metric; take the first raised."""
    if not info:
        return None
    candidates = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for c in candidates:
        if c.get("raised_exception"):
            message = str(c.get("exception_message") or "error").strip()
            return message.splitlines()[0][:500] if message else "error"
    return None


def _flatten(spec: SuiteSpec, gx_result: ExpectationValidationResult) -> ExpectationResult:
    from expectations._base import jsonable, severity_of

    config = gx_result.expectation_config
    kwargs = dict(config.kwargs)
    result = gx_result.result or {}
    error = _exception_message(gx_result.exception_info)
    percent = result.get("unexpected_percent")
    unexpected_count = result.get("unexpected_count")
    sample = list(result.get("partial_unexpected_list") or [])
    if unexpected_count is None and "unexpected_rows" in (result.get("details") or {}):
        # Query expectations: the count is the observed value, the rows are the sample.
        unexpected_count = result.get("observed_value")
        sample = list(result["details"]["unexpected_rows"] or [])
    return ExpectationResult(
        suite=spec.name,
        table=spec.table,
        expectation=config.type,
        column=_column_of(kwargs),
        severity=severity_of(config.meta, getattr(config, "severity", None)),
        success=bool(gx_result.success) and error is None,
        description=config.description or _describe(config.type, kwargs),
        unexpected_count=unexpected_count,
        unexpected_percent=float(percent) if percent is not None else None,
        observed_value=jsonable(result.get("observed_value")),
        sample=jsonable(sample[:SAMPLE_SIZE]),
        error=error,
    )


def _run_suite(
    context: AbstractDataContext, datasource: Any, spec: SuiteSpec, params: RunParams, gx_run_id: Any
) -> tuple[SuiteResult, ExpectationSuiteValidationResult]:
    import great_expectations as gx

    asset = datasource.add_table_asset(name=spec.table, table_name=spec.table_name, schema_name=spec.schema)
    batch = asset.add_batch_definition_whole_table(name="batch")
    suite = context.suites.add(gx.ExpectationSuite(name=spec.name, expectations=spec.build(params)))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=spec.name, data=batch, suite=suite))
    gx_result = definition.run(result_format="SUMMARY", run_id=gx_run_id)
    expectations = [_flatten(spec, r) for r in gx_result.results]
    return SuiteResult(
        spec.name, spec.table, all(e.success for e in expectations), expectations=expectations
    ), gx_result


def dbt_suites(tests: Sequence[DataTest]) -> list[SuiteResult]:
    """dbt's data test results, as one suite per tested model."""
    by_model: dict[str, list[ExpectationResult]] = {}
    for t in tests:
        by_model.setdefault(t.model, []).append(
            ExpectationResult(
                suite=f"dbt {t.model}",
                table=t.model,
                expectation=t.kind,
                column=t.column,
                severity=DBT_SEVERITY.get(t.severity, CRITICAL),
                success=t.success,
                description=t.name,
                unexpected_count=t.failures if t.status in ("fail", "warn") else None,
                error=t.message if t.status == "error" else None,
            )
        )
    return [
        SuiteResult(f"dbt {model}", model, all(e.success for e in results), expectations=results)
        for model, results in sorted(by_model.items())
    ]


def _suite_error(spec: SuiteSpec, exc: Exception) -> SuiteResult:
    """A suite that raised counts as one failed critical check (the gate fails closed)."""
    failure = ExpectationResult(
        suite=spec.name,
        table=spec.table,
        expectation="suite_error",
        column=None,
        severity=CRITICAL,
        success=False,
        description="the suite could not run",
        error=f"{exc.__class__.__name__}: {exc}".strip()[:500],
    )
    return SuiteResult(spec.name, spec.table, False, expectations=[failure])


def run_validation(
    warehouse: Warehouse,
    as_of: date,
    run_id: str,
    suites: Sequence[str] | None = None,
    *,
    dbt_tests: Sequence[DataTest] = (),
    store: bool = True,
    timezone: str | None = None,
) -> ValidationReport:
    """Validate one run: the raw inputs with GX, and the marts' dbt test results; store and return the gate.

    suites: names from `expectations.SUITES` (default: all). Suites whose
    table does not exist are reported as skipped. dbt_tests: the data test
    results of the run's build (csflow.dbt.build_and_test).
    store: write ops.validation_runs / ops.validation_results.
    timezone: the run's; with it, rows after as_of are counted (report.after_as_of).
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.datasource.fluent.interfaces import GxDatasourceWarning

    registry = load_suites()
    names = list(suites) if suites is not None else list(registry.SUITES)
    unknown = [n for n in names if n not in registry.SUITES]
    if unknown:
        raise ValueError(f"unknown validation suite {unknown[0]!r}; known suites: {', '.join(registry.SUITES)}")
    specs: list[SuiteSpec] = [registry.SUITES[n] for n in names]

    started = time.perf_counter()
    validated_at = datetime.now(UTC)
    engine = warehouse.engine()
    try:
        params = registry.RunParams(as_of=as_of, latest_loads=latest_loads(engine))
        existing = _existing_tables(engine, (s.table for s in specs))
        context = _gx_context({GX_URL_VARIABLE: warehouse.url.render_as_string(hide_password=False)})
        gx_run_id = RunIdentifier(run_name=run_id, run_time=validated_at)
        results: list[SuiteResult] = []
        gx_results: list[Any] = []
        with warnings.catch_warnings():
            # add_sql, not add_postgres: the latter rejects the embedded server's Unix-socket
            # URL; GX then suggests PostgresDatasource on every engine it creates.
            warnings.filterwarnings("ignore", category=GxDatasourceWarning)
            datasource = context.data_sources.add_sql(
                name=DATASOURCE_NAME, connection_string="${" + GX_URL_VARIABLE + "}"
            )
            try:
                for spec in specs:
                    if spec.table not in existing:
                        results.append(
                            SuiteResult(spec.name, spec.table, True, skipped=True, skip_reason="table does not exist")
                        )
                        continue
                    t0 = time.perf_counter()
                    try:
                        suite_result, gx_result = _run_suite(context, datasource, spec, params, gx_run_id)
                        gx_results.append(gx_result)
                    except Exception as exc:  # a suite that cannot run must not open the gate
                        log.exception("validation suite %s could not run", spec.name)
                        suite_result = _suite_error(spec, exc)
                    suite_result.seconds = time.perf_counter() - t0
                    results.append(suite_result)
            finally:
                datasource.get_engine().dispose()  # GX's own pool: do not leave connections open
        results += dbt_suites(dbt_tests)
        report = ValidationReport(
            run_id, as_of, validated_at, results, time.perf_counter() - started,
            after_as_of=rows_after_as_of(engine, as_of, timezone) if timezone else {}, gx_results=gx_results,
        )
        if store:
            store_report(engine, report)
    finally:
        engine.dispose()
    log.info("%s", report._headline())
    return report


# --------------------------------------------------------------------------
# ops.validation_runs / ops.validation_results

def store_report(engine: sa.Engine, report: ValidationReport) -> None:
    """One row per run and one per expectation; re-validating a run replaces its rows."""
    key = {"run_id": report.run_id, "as_of_date": report.as_of}
    with engine.begin() as conn:
        conn.execute(
            validation_runs.delete().where(
                validation_runs.c.run_id == report.run_id, validation_runs.c.as_of_date == report.as_of
            )
        )
        conn.execute(
            validation_runs.insert().values(
                **key,
                validated_at=report.validated_at,
                gate_open=report.gate_open,
                suites_run=len(report.suites_run),
                suites_failed=len(report.suites_failed),
                critical_failures=len(report.critical_failures),
                warning_failures=len(report.warning_failures),
                skipped_suites=[s.name for s in report.suites_skipped],
                seconds=report.seconds,
            )
        )
        rows = [
            {
                **key,
                "suite": e.suite,
                "table_name": e.table,
                "expectation": e.expectation,
                "column_name": e.column,
                "severity": e.severity,
                "success": e.success,
                "description": e.description,
                "unexpected_count": e.unexpected_count,
                "unexpected_percent": e.unexpected_percent,
                "observed_value": e.observed_value,
                "sample": e.sample,
                "error": e.error,
            }
            for e in report.results
        ]
        if rows:
            conn.execute(validation_results.insert(), rows)


# --------------------------------------------------------------------------
# Data Docs


def _escape_data(value: Any) -> Any:
    if isinstance(value, str):
        return html.escape(value)
    if isinstance(value, dict):
        return {k: _escape_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape_data(v) for v in value]
    return value


def _escaped(result: ExpectationSuiteValidationResult) -> ExpectationSuiteValidationResult:
    """A copy whose values from the data (samples, observed values) are HTML-escaped.

    GX's Data Docs put sample values into the page as markup: a contact email
    `<img src=x onerror=...>` would run as script. Escaped, it shows as text.
    """
    result = copy.deepcopy(result)
    for r in result.results:
        r.result = _escape_data(r.result or {})
    return result


def build_data_docs(
    report_or_results: ValidationReport | Iterable[ExpectationSuiteValidationResult], out_dir: Path
) -> Path:
    """Render GX Data Docs (HTML) for a report into out_dir; return its index.html.

    Off the critical path: call it after the gate is decided (it only reads
    the GX results kept on the report, never the warehouse). out_dir should be
    a state folder such as settings.state_dir / "data_docs", not the repo.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    results = report_or_results.gx_results if isinstance(report_or_results, ValidationReport) else report_or_results
    results = [_escaped(r) for r in results]
    load_suites()  # registers csflow's own expectation classes for rendering
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    context = _gx_context(docs_dir=out_dir)
    added: set[str] = set()
    for result in results:
        suite_id = ExpectationSuiteIdentifier(name=result.suite_name)
        if result.suite_name not in added:
            added.add(result.suite_name)
            context.suites.add(
                gx.ExpectationSuite(name=result.suite_name, expectations=[r.expectation_config for r in result.results])
            )
        key = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=result.meta["run_id"], batch_identifier=result.batch_id
        )
        context.validation_results_store.store_validation_results(result, key)
    context.build_data_docs(site_names=[DOCS_SITE_NAME])
    make_offline(out_dir)
    return out_dir / "index.html"


# What Data Docs pages load from the web, and what they load instead: a file
# under static/vendor/ (copied from the XStatic packages, or csflow's own
# stand-in for bootstrap-table), or nothing (the tag goes; the page looks the
# same without it: a dark theme, a date picker for one filter, vega for charts
# csflow's expectations do not draw, popper inside bootstrap.bundle.js).
_WEB_ASSETS: dict[str, str | None] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/": "bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/": "bootstrap.bundle.min.js",
    "https://code.jquery.com/jquery-": "jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/": "fontawesome/css/all.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "table-lite.js",
    "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png": "../images/logo-long.png",
    "https://unpkg.com/bootstrap-table": None,
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/": None,
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/": None,
    "https://cdn.jsdelivr.net/npm/": None,
}
_WEB_TAG = re.compile(
    r"""<(?:link|script|img)\b[^>]*?\b(?:href|src)="(?P<url>https://[^"]+)"[^>]*>(?:</script>)?"""
)

_CDN_ONLY_ATTRIBUTES = re.compile(r'\s(?:integrity|crossorigin)(?:="[^"]*")?')


def make_offline(docs_dir: Path) -> None:
    """Point every Data Docs page at local copies of what it would fetch from the web.

    GX's pages load Bootstrap, jQuery, Font Awesome and bootstrap-table from
    CDNs, so offline (or behind a strict proxy) they show as unstyled text and
    an empty index. The assets come from the XStatic packages (pinned in
    pyproject.toml) into static/vendor/; each page links them by its own
    relative path. A page that still names a CDN afterwards is a GX upgrade
    to look at: the test of this function fails on it.
    """
    import xstatic.pkg.bootstrap
    import xstatic.pkg.font_awesome
    import xstatic.pkg.jquery

    vendor = docs_dir / "static" / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    bootstrap, jquery = Path(xstatic.pkg.bootstrap.BASE_DIR), Path(xstatic.pkg.jquery.BASE_DIR)
    shutil.copyfile(bootstrap / "css" / "bootstrap.min.css", vendor / "bootstrap.min.css")
    shutil.copyfile(bootstrap / "js" / "bootstrap.bundle.min.js", vendor / "bootstrap.bundle.min.js")
    shutil.copyfile(jquery / "jquery.min.js", vendor / "jquery.min.js")
    shutil.copyfile(Path(__file__).parent / "static" / "table-lite.js", vendor / "table-lite.js")
    fontawesome = Path(xstatic.pkg.font_awesome.BASE_DIR)
    for sub in ("css", "webfonts"):
        shutil.copytree(fontawesome / sub, vendor / "fontawesome" / sub, dirs_exist_ok=True)

    for page in docs_dir.rglob("*.html"):
        to_vendor = Path(os.path.relpath(vendor, page.parent)).as_posix()
        page.write_text(_WEB_TAG.sub(functools.partial(_local_tag, to_vendor=to_vendor), page.read_text(encoding="utf-8")), encoding="utf-8")


def _local_tag(match: re.Match[str], to_vendor: str) -> str:
    """One tag that loads from the web: pointing at its local copy, or gone (see _WEB_ASSETS)."""
    url = match["url"]
    for prefix, asset in _WEB_ASSETS.items():
        if url.startswith(prefix):
            if asset is None:
                return ""
            target = posixpath.normpath(f"{to_vendor}/{asset}")
            tag = _CDN_ONLY_ATTRIBUTES.sub("", match[0])  # a hash of the CDN's file; CORS, which file: lacks
            return tag.replace(url, html.escape(target, quote=True))
    return match[0]
