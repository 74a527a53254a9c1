"""The validation gate against a real PostgreSQL: clean data opens it, broken
data closes it and says what broke, warnings are reported only, results are
stored, mart suites check hand-made marts, Data Docs build."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csflow.generate import generate
from csflow.ingest import ingest_folder
from csflow.validation import (
    ExpectationResult,
    ValidationReport,
    build_data_docs,
    dbt_health_band_bounds,
    rows_after_as_of,
    run_validation,
)
from csflow.warehouse import Warehouse
from expectations import MART_SUITES, RAW_SUITES, SUITES, RunParams
from tests.conftest import write_csv

AS_OF = date(2026, 3, 31)
RAW = [s.name for s in RAW_SUITES]
MARTS = [s.name for s in MART_SUITES]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean generated landing folder (100 accounts), written once per module."""
    folder = tmp_path_factory.mktemp("landing")
    generate(folder, accounts=100, seed=1, as_of=AS_OF)
    return folder


@pytest.fixture
def loaded(engine: sa.Engine, landing: Path) -> sa.Engine:
    """A fresh database holding the clean data set."""
    report = ingest_folder(engine, landing)
    assert not report.unusable and report.totals()["rows_rejected"] == 0
    return engine


def insert_variant(engine: sa.Engine, table: str, **changes: Any) -> None:
    """Copy one existing row of a raw table, change some columns, insert it."""
    sets = ", ".join(f'"{column}" = :{column}' for column in changes)
    with engine.begin() as conn:
        conn.execute(sa.text(f"create temp table variant on commit drop as select * from {table} limit 1"))
        conn.execute(sa.text(f"update variant set {sets}"), changes)
        conn.execute(sa.text(f"insert into {table} select * from variant"))


def failure(report: ValidationReport, suite: str, expectation: str, column: str | None = None) -> ExpectationResult:
    found = [
        e
        for e in report.failures
        if e.suite == suite and e.expectation == expectation and (column is None or e.column == column)
    ]
    assert found, f"no failure {suite}/{expectation}/{column}; failures: {[e.headline() for e in report.failures]}"
    return found[0]


def scalar(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


# --------------------------------------------------------------------------
# Raw suites


def test_clean_generated_data_passes_and_opens_the_gate(warehouse: Warehouse, loaded: sa.Engine) -> None:
    report = run_validation(warehouse, AS_OF, "clean")

    assert report.gate_open
    assert report.failures == []
    assert [s.name for s in report.suites_run] == RAW
    assert all(s.success for s in report.suites_run)
    # Marts are not built in this test: their suites are skipped, not failed.
    assert {s.name for s in report.suites_skipped} == set(MARTS)
    assert all(s.skip_reason == "table does not exist" for s in report.suites_skipped)
    # Every given file is checked for rows from its latest load.
    row_checks = [e for e in report.results if e.expectation == "expect_table_row_count_to_be_between"]
    assert len(row_checks) == len(RAW) and all(e.success and e.observed_value > 0 for e in row_checks)
    assert "gate OPEN" in report.summary_markdown()


def test_corrupted_data_closes_the_gate_and_names_what_failed(warehouse: Warehouse, loaded: sa.Engine) -> None:
    duplicate = scalar(loaded, "select min(contract_id) from raw.contracts")
    with loaded.begin() as conn:
        conn.execute(
            sa.text("insert into raw.contracts select * from raw.contracts where contract_id = :id"), {"id": duplicate}
        )
    insert_variant(loaded, "raw.contracts", contract_id="C-NEGATIVE", arr=-1200)
    insert_variant(loaded, "raw.survey_responses", response_id="R-14", survey_type="nps", score=14)
    # After as_of but before the file was loaded: a later export, not used by this run, not an error.
    usage_after_as_of = rows_after_as_of(loaded, AS_OF, "Asia/Tokyo").get("usage_events", 0)
    insert_variant(loaded, "raw.usage_events", occurred_at=datetime(2026, 4, 7, 9, 30, tzinfo=UTC))
    # After the file was loaded (beyond the clock-skew allowance): cannot be true.
    future = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    insert_variant(loaded, "raw.usage_events", occurred_at=future)

    report = run_validation(warehouse, AS_OF, "corrupted", RAW, timezone="Asia/Tokyo")

    assert not report.gate_open
    unique = failure(report, "raw_contracts", "expect_column_values_to_be_unique", "contract_id")
    assert unique.severity == "critical" and unique.unexpected_count == 2 and unique.sample[:2] == [duplicate] * 2
    arr = failure(report, "raw_contracts", "expect_column_values_to_be_between", "arr")
    assert arr.unexpected_count == 1 and float(arr.sample[0]) == -1200
    nps = failure(report, "raw_survey_responses", "expect_column_values_to_be_between", "score")
    assert nps.unexpected_count == 1 and nps.sample == [14] and "survey_type" in nps.description
    late = failure(report, "raw_usage_events", "expect_column_values_to_be_between", "occurred_at")
    assert late.unexpected_count == 1 and datetime.fromisoformat(late.sample[0]) == future
    assert report.after_as_of["usage_events"] == usage_after_as_of + 2
    assert f"usage_events {usage_after_as_of + 2}" in report.summary_markdown()
    assert {e.suite for e in report.critical_failures} == {"raw_contracts", "raw_survey_responses", "raw_usage_events"}
    assert {s.name for s in report.suites_failed} == {"raw_contracts", "raw_survey_responses", "raw_usage_events"}

    text = report.failures_text()
    assert "gate CLOSED" in text and "Playbooks did not act" in text
    assert "raw.contracts.contract_id" in text and duplicate in text
    markdown = report.summary_markdown()
    assert "| raw_contracts | raw.contracts | **failed** | 2 | 0 |" in markdown
    assert "| critical | raw_survey_responses |" in markdown


def test_warning_failures_keep_the_gate_open_but_are_reported(warehouse: Warehouse, loaded: sa.Engine) -> None:
    insert_variant(loaded, "raw.contacts", contact_id="CT-BAD", email="not an email")
    # 2% of contacts name an account nobody knows: over the 1% tolerance.
    contacts = scalar(loaded, "select count(*) from raw.contacts")
    for i in range(contacts // 50 + 1):
        insert_variant(
            loaded, "raw.contacts", contact_id=f"CT-UNKNOWN-{i}", account_id="ACC-NOPE", _unknown_account=True
        )
    # One unknown usage event among thousands: within tolerance, still mentioned.
    insert_variant(loaded, "raw.usage_events", account_id="ACC-NOPE", _unknown_account=True)

    report = run_validation(warehouse, AS_OF, "warnings", RAW)

    assert report.gate_open
    assert report.critical_failures == []
    email = failure(report, "raw_contacts", "expect_column_values_to_match_regex", "email")
    assert email.severity == "warning" and email.unexpected_count == 1 and email.sample == ["not an email"]
    unknown = failure(report, "raw_contacts", "expect_column_values_to_be_in_set", "_unknown_account")
    assert unknown.severity == "warning" and unknown.unexpected_count == contacts // 50 + 1
    assert [(e.suite, e.unexpected_count) for e in report.within_tolerance] == [("raw_usage_events", 1)]
    text = report.failures_text()
    assert "gate OPEN" in text and "Warnings:" in text and "not an email" in text
    assert "Within tolerance" in text and "raw_usage_events" in text


def test_a_given_file_that_left_no_rows_is_critical(warehouse: Warehouse, loaded: sa.Engine, tmp_path: Path) -> None:
    # Yesterday's tickets are still there, but today's file had a header and nothing else.
    write_csv(tmp_path / "today", "support_tickets.csv", "ticket_id,account_id,opened_at,channel")
    ingest_folder(loaded, tmp_path / "today")

    report = run_validation(warehouse, AS_OF, "empty-file", ["raw_support_tickets", "raw_orders"])

    assert not report.gate_open
    empty = failure(report, "raw_support_tickets", "expect_table_row_count_to_be_between")
    assert empty.observed_value == 0 and "support_tickets.csv" in empty.description
    assert report.suite("raw_orders").success


def test_results_are_stored_one_row_per_expectation(warehouse: Warehouse, loaded: sa.Engine) -> None:
    insert_variant(loaded, "raw.survey_responses", response_id="R-0", survey_type="csat", score=0)
    for _ in range(2):  # re-validating a run replaces its rows
        report = run_validation(warehouse, AS_OF, "stored", RAW)

    with loaded.connect() as conn:
        runs = conn.execute(sa.text("select * from ops.validation_runs")).mappings().all()
        results = conn.execute(sa.text("select * from ops.validation_results order by suite")).mappings().all()
    assert len(runs) == 1
    run = runs[0]
    assert (run["run_id"], run["as_of_date"], run["gate_open"]) == ("stored", AS_OF, False)
    assert (run["suites_run"], run["suites_failed"], run["critical_failures"], run["warning_failures"]) == (
        len(RAW),
        1,
        1,
        0,
    )
    assert run["validated_at"] == report.validated_at
    assert len(results) == len(report.results)
    failed = [r for r in results if not r["success"]]
    assert len(failed) == 1
    assert failed[0]["suite"] == "raw_survey_responses" and failed[0]["column_name"] == "score"
    assert failed[0]["severity"] == "critical" and failed[0]["unexpected_count"] == 1 and failed[0]["sample"] == [0]
    assert {r["table_name"] for r in results} == {s.table for s in RAW_SUITES}


def test_unknown_suite_names_are_refused(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="unknown validation suite 'raw_nope'"):
        run_validation(warehouse, AS_OF, "x", ["raw_nope"])


# --------------------------------------------------------------------------
# Mart suites, on hand-made tables with the contract's columns

MART_DDL = """
create schema if not exists marts;
create table marts.purchase_trends (
  account_id text, order_count integer, total_amount numeric, first_order_date date, last_order_date date,
  amount_last_12m numeric, amount_prior_12m numeric, growth_rate_12m numeric, is_growing boolean,
  period_end_share numeric, frequency integer, recency_days integer, tenure_days integer, monetary_value numeric
);
create table marts.renewal_windows (
  contract_id text, account_id text, end_date date, days_to_renewal integer, renewal_window text,
  is_in_upsell_window boolean, is_in_target_window boolean
);
create table marts.account_health (
  account_id text, as_of_date date, health_score numeric, health_band text,
  usage_trend_score numeric, adoption_breadth_score numeric, nps_score numeric, support_load_score numeric,
  payment_history_score numeric, marketing_engagement_score numeric, score_change_30d numeric, is_declining boolean
);
create table marts.account_segments (
  account_id text, priority text, touch_tier text, ltv numeric, features_used_90d integer,
  is_single_feature_user boolean, is_heavy_user boolean
);
create table marts.kpi_monthly (
  month date, active_accounts_start integer, churned_accounts integer, logo_retention_rate numeric,
  gross_revenue_retention numeric, net_revenue_retention numeric, nps numeric, csat_avg numeric,
  upsell_rate numeric, cross_sell_rate numeric
)
"""


def insert_rows(engine: sa.Engine, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    sql = f"insert into {table} ({', '.join(columns)}) values ({', '.join(':' + c for c in columns)})"
    with engine.begin() as conn:
        conn.execute(sa.text(sql), rows)


def renewal(contract_id: str, end_date: date, window: str) -> dict[str, Any]:
    return {
        "contract_id": contract_id,
        "account_id": "A1",
        "end_date": end_date,
        "days_to_renewal": (end_date - AS_OF).days,
        "renewal_window": window,
        "is_in_upsell_window": window == "2-4m",
        "is_in_target_window": date(2026, 6, 30) <= end_date <= date(2026, 9, 30),
    }


def health(account_id: str, score: float, band: str, as_of_date: date = AS_OF) -> dict[str, Any]:
    return {"account_id": account_id, "as_of_date": as_of_date, "health_score": score, "health_band": band}


@pytest.fixture
def marts(engine: sa.Engine) -> sa.Engine:
    """Consistent hand-made marts as of AS_OF (every band and window edge)."""
    with engine.begin() as conn:
        conn.execute(sa.text(MART_DDL))
    insert_rows(
        engine,
        "marts.purchase_trends",
        [
            {
                "account_id": "A1",
                "order_count": 3,
                "first_order_date": date(2025, 1, 5),
                "last_order_date": date(2026, 2, 1),
                "frequency": 2,
                "recency_days": 392,
                "tenure_days": 450,
            },
            {
                "account_id": "A2",
                "order_count": 1,
                "first_order_date": date(2026, 3, 1),
                "last_order_date": date(2026, 3, 1),
                "frequency": 0,
                "recency_days": 0,
                "tenure_days": 30,
            },
        ],
    )
    insert_rows(
        engine,
        "marts.renewal_windows",
        [
            renewal("C1", date(2026, 3, 1), "overdue"),
            renewal("C2", date(2026, 3, 31), "0-2m"),
            renewal("C3", date(2026, 5, 30), "0-2m"),
            renewal("C4", date(2026, 5, 31), "2-4m"),
            renewal("C5", date(2026, 7, 31), "2-4m"),
            renewal("C6", date(2026, 8, 1), "4-6m"),
            renewal("C7", date(2026, 9, 30), "4-6m"),
            renewal("C8", date(2026, 10, 1), "6m+"),
        ],
    )
    insert_rows(
        engine,
        "marts.account_health",
        [
            health("A1", 70, "green"),
            health("A2", 69.99, "yellow"),
            health("A3", 40, "yellow"),
            health("A4", 39.9, "red"),
            health("A5", 100, "green"),
            # History is kept; an older slice is not this run's business.
            health("A1", 30, "green", AS_OF - timedelta(days=1)),
            health("A1", 30, "green", AS_OF - timedelta(days=1)),
        ],
    )
    insert_rows(
        engine,
        "marts.account_segments",
        [
            {"account_id": "A1", "priority": "high", "touch_tier": "high_touch"},
            {"account_id": "A2", "priority": "none", "touch_tier": "tech_touch"},
        ],
    )
    insert_rows(
        engine,
        "marts.kpi_monthly",
        [
            {
                "month": date(2026, 2, 1),
                "active_accounts_start": 100,
                "churned_accounts": 2,
                "logo_retention_rate": 0.98,
                "gross_revenue_retention": 0.97,
                "net_revenue_retention": 1.04,
                "nps": -100,
                "csat_avg": 4.2,
                "upsell_rate": 0.05,
                "cross_sell_rate": 0,
            },
            {
                "month": date(2026, 3, 1),
                "active_accounts_start": 98,
                "churned_accounts": 0,
                "logo_retention_rate": 1,
                "gross_revenue_retention": 1,
                "net_revenue_retention": 1.1,
                "nps": 100,
                "csat_avg": None,
                "upsell_rate": None,
                "cross_sell_rate": 1,
            },
        ],
    )
    return engine


def test_consistent_marts_pass(warehouse: Warehouse, marts: sa.Engine) -> None:
    report = run_validation(warehouse, AS_OF, "marts", MARTS)

    assert report.gate_open, report.failures_text()
    assert report.failures == []
    assert [s.name for s in report.suites_run] == MARTS


def test_inconsistent_marts_close_the_gate(warehouse: Warehouse, marts: sa.Engine) -> None:
    with marts.begin() as conn:
        conn.execute(sa.text("update marts.account_health set health_score = 30 where account_id = 'A5'"))
        conn.execute(sa.text("update marts.account_health set nps_score = 130 where account_id = 'A4'"))
        conn.execute(sa.text("update marts.renewal_windows set renewal_window = 'overdue' where contract_id = 'C2'"))
        conn.execute(sa.text("update marts.renewal_windows set renewal_window = '4-6m' where contract_id = 'C5'"))
        conn.execute(sa.text("update marts.renewal_windows set days_to_renewal = 99 where contract_id = 'C8'"))
        conn.execute(sa.text("update marts.kpi_monthly set nps = 120, gross_revenue_retention = 1.2"))
        conn.execute(sa.text("update marts.purchase_trends set order_count = 0 where account_id = 'A2'"))
        conn.execute(sa.text("update marts.account_segments set priority = 'urgent' where account_id = 'A1'"))
        conn.execute(
            sa.text(
                "insert into marts.account_segments (account_id, priority, touch_tier) values ('A1', 'low', 'low_touch')"
            )
        )

    report = run_validation(warehouse, AS_OF, "bad-marts", MARTS)

    assert not report.gate_open
    band = failure(report, "marts_account_health", "expect_no_unexpected_rows")
    assert band.severity == "critical" and band.unexpected_count == 1
    assert band.sample == [
        {"account_id": "A5", "as_of_date": "2026-03-31", "health_score": "30", "health_band": "green"}
    ]

    component = failure(report, "marts_account_health", "expect_column_values_to_be_between", "nps_score")
    assert component.severity == "critical" and component.sample == ["130"]

    windows = {e.description: e for e in report.failures if e.suite == "marts_renewal_windows"}
    overdue = next(e for d, e in windows.items() if d.startswith("renewal_window is 'overdue'"))
    assert overdue.unexpected_count == 1 and overdue.sample[0]["contract_id"] == "C2"
    calendar = next(e for d, e in windows.items() if d.startswith("renewal_window matches end_date"))
    assert sorted(r["contract_id"] for r in calendar.sample) == ["C2", "C5"]
    days = next(e for d, e in windows.items() if d.startswith("days_to_renewal = end_date - as_of"))
    assert days.sample == [{"contract_id": "C8", "end_date": "2026-10-01", "days_to_renewal": 99}]

    nps = failure(report, "marts_kpi_monthly", "expect_column_values_to_be_between", "nps")
    assert nps.unexpected_count == 2 and nps.sample == ["120", "120"]
    failure(report, "marts_kpi_monthly", "expect_column_values_to_be_between", "gross_revenue_retention")
    orders = failure(report, "marts_purchase_trends", "expect_column_values_to_be_between", "order_count")
    assert orders.sample == [0]
    failure(report, "marts_account_segments", "expect_column_values_to_be_in_set", "priority")
    failure(report, "marts_account_segments", "expect_column_values_to_be_unique", "account_id")
    # order_count 0 also breaks the BTYD summary: a warning on top of the critical failure.
    btyd = failure(report, "marts_purchase_trends", "expect_no_unexpected_rows")
    assert btyd.severity == "warning" and btyd.sample[0]["account_id"] == "A2"
    assert all(e.severity == "critical" for e in report.failures if e is not btyd)
    # Yesterday's inconsistent slice of account_health is not checked again.
    assert "2026-03-30" not in report.failures_text()


def test_health_without_rows_for_as_of_is_critical(warehouse: Warehouse, marts: sa.Engine) -> None:
    report = run_validation(warehouse, AS_OF + timedelta(days=1), "stale", ["marts_account_health"])

    assert not report.gate_open
    stale = failure(report, "marts_account_health", "expect_table_row_count_to_be_between")
    assert stale.observed_value == 0


def test_a_mart_missing_a_contract_column_fails_closed(warehouse: Warehouse, marts: sa.Engine) -> None:
    with marts.begin() as conn:
        conn.execute(sa.text("alter table marts.account_segments rename column touch_tier to tier"))

    report = run_validation(warehouse, AS_OF, "renamed", ["marts_account_segments"])

    assert not report.gate_open
    broken = [e for e in report.critical_failures if e.column == "touch_tier"]
    assert broken and all(e.error for e in broken)


def test_health_band_bounds_default_to_the_dbt_vars(tmp_path: Path) -> None:
    assert dbt_health_band_bounds() == (70.0, 40.0)  # dbt_project.yml as shipped
    project = tmp_path / "dbt_project.yml"
    project.write_text("vars:\n  health_green_min_score: 75\n  health_yellow_min_score: 45\n", encoding="utf-8")
    assert dbt_health_band_bounds(project) == (75.0, 45.0)
    assert dbt_health_band_bounds(tmp_path / "missing.yml") == (70.0, 40.0)


def test_health_band_bounds_follow_configuration(warehouse: Warehouse, marts: sa.Engine) -> None:
    report = run_validation(warehouse, AS_OF, "bands", ["marts_account_health"], health_band_bounds=(80, 50))

    band = failure(report, "marts_account_health", "expect_no_unexpected_rows")
    assert sorted(r["account_id"] for r in band.sample) == ["A1", "A3"]  # green 70 < 80, yellow 40 < 50
    assert "green from 80, yellow from 50" in band.description


# --------------------------------------------------------------------------
# Data Docs


def test_data_docs_build_into_a_folder(warehouse: Warehouse, marts: sa.Engine, tmp_path: Path) -> None:
    with marts.begin() as conn:
        conn.execute(sa.text("update marts.account_health set health_score = 30 where account_id = 'A5'"))
    report = run_validation(warehouse, AS_OF, "docs", MARTS, store=False)

    index = build_data_docs(report, tmp_path / "data_docs")

    assert index == (tmp_path / "data_docs" / "index.html").resolve()
    assert index.is_file()
    pages = list((tmp_path / "data_docs" / "validations").rglob("*.html"))
    assert {p.relative_to(tmp_path / "data_docs" / "validations").parts[0] for p in pages} == set(MARTS)
    health_page = next(p for p in pages if "marts_account_health" in p.parts).read_text(encoding="utf-8")
    assert "health_band agrees with health_score" in health_page
    assert "marts_kpi_monthly" in index.read_text(encoding="utf-8")


def test_every_suite_is_registered_with_its_table() -> None:
    assert set(SUITES) == set(RAW) | set(MARTS)
    for name, spec in SUITES.items():
        assert name == spec.table.replace(".", "_")
        expectations = spec.build(RunParams(as_of=AS_OF))
        assert expectations and all(e.meta["severity"] in ("critical", "warning") for e in expectations)
