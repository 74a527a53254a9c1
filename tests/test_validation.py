"""The validation gate against a real PostgreSQL: clean data opens it, broken
data closes it and says what broke, warnings are reported only, results are
stored, dbt's tests of the marts join the same gate, Data Docs build."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csflow.dbt import DataTest, run_dbt
from csflow.demo import generate
from csflow.ingest import ingest_folder
from csflow.validation import (
    ExpectationResult,
    ValidationReport,
    build_data_docs,
    rows_after_as_of,
    run_validation,
)
from csflow.warehouse import Warehouse
from expectations import RAW_SUITES, SUITES, RunParams
from tests.conftest import write_csv

AS_OF = date(2026, 3, 31)
RAW = [s.name for s in RAW_SUITES]


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
# dbt's tests of the marts join the same gate


def _dbt_test(model: str, kind: str, severity: str, status: str, failures: int | None = 1) -> DataTest:
    return DataTest(f"{kind}_{model}", kind, model, "health_score", severity, status, failures, "")


def test_dbt_test_results_join_the_gate_with_their_severity(warehouse: Warehouse, loaded: sa.Engine) -> None:
    tests = [
        _dbt_test("account_health", "accepted_range", "error", "fail", 3),
        _dbt_test("kpi_monthly", "accepted_range", "warn", "warn", 2),
        _dbt_test("renewal_windows", "not_null", "error", "pass", 0),
    ]
    report = run_validation(warehouse, AS_OF, "with-dbt", RAW, dbt_tests=tests)
    assert not report.gate_open
    (critical,) = report.critical_failures
    assert (critical.suite, critical.table, critical.unexpected_count) == ("dbt account_health", "account_health", 3)
    (warned,) = report.warning_failures
    assert warned.suite == "dbt kpi_monthly"
    assert report.suite("dbt renewal_windows").success
    with loaded.connect() as conn:
        stored = conn.execute(
            sa.text("select suite, severity, success from ops.validation_results where run_id = 'with-dbt' and suite like 'dbt %' order by 1")
        ).all()
    assert [tuple(r) for r in stored] == [
        ("dbt account_health", "critical", False), ("dbt kpi_monthly", "warning", False), ("dbt renewal_windows", "critical", True),
    ]
    # Warnings alone keep the gate open.
    assert run_validation(warehouse, AS_OF, "warn-only", RAW, dbt_tests=tests[1:]).gate_open


def test_a_broken_mart_closes_the_gate_through_its_dbt_test_not_the_run(built_marts) -> None:
    db, settings = built_marts
    engine = db.engine()
    with engine.begin() as conn:
        account, score = conn.execute(
            sa.text("select account_id, health_score from marts.account_health order by account_id limit 1")
        ).one()
        conn.execute(sa.text("update marts.account_health set health_score = 150 where account_id = :a"), {"a": account})
    try:
        result = run_dbt(db, settings, ["test", "--select", "account_health,test_type:data"], use_prefect=False, gate_tests=True)
    finally:
        with engine.begin() as conn:
            conn.execute(
                sa.text("update marts.account_health set health_score = :s where account_id = :a"), {"s": score, "a": account}
            )
        engine.dispose()
    failed = [t for t in result.data_tests if not t.success]
    assert [(t.kind, t.column, t.severity) for t in failed] == [("accepted_range", "health_score", "error")]
    report = run_validation(db, AS_OF, "broken-mart", ["raw_accounts"], dbt_tests=result.data_tests, store=False)
    assert not report.gate_open and report.critical_failures[0].suite == "dbt account_health"


# --------------------------------------------------------------------------
# Data Docs


def test_data_docs_build_into_a_folder(warehouse: Warehouse, loaded: sa.Engine, tmp_path: Path) -> None:
    insert_variant(loaded, "raw.contracts", contract_id="C-NEGATIVE", arr=-1200)
    report = run_validation(warehouse, AS_OF, "docs", RAW, store=False)

    index = build_data_docs(report, tmp_path / "data_docs")

    assert index == (tmp_path / "data_docs" / "index.html").resolve()
    assert index.is_file()
    pages = list((tmp_path / "data_docs" / "validations").rglob("*.html"))
    assert {p.relative_to(tmp_path / "data_docs" / "validations").parts[0] for p in pages} == set(RAW)
    contracts_page = next(p for p in pages if "raw_contracts" in p.parts).read_text(encoding="utf-8")
    assert "arr" in contracts_page
    assert "raw_accounts" in index.read_text(encoding="utf-8")
    # Nothing a page loads comes from the web (a GX upgrade that adds a CDN asset fails here).
    for page in [index, *pages]:
        fetched = re.findall(r"<(?:link|script|img)\b[^>]*\b(?:href|src)=\"(https?://[^\"]*)", page.read_text(encoding="utf-8"))
        assert fetched == [], page
    assert (tmp_path / "data_docs" / "static" / "vendor" / "fontawesome" / "webfonts" / "fa-solid-900.woff2").is_file()


def test_every_suite_is_registered_with_its_table() -> None:
    assert set(SUITES) == set(RAW)
    for name, spec in SUITES.items():
        assert name == spec.table.replace(".", "_")
        expectations = spec.build(RunParams(as_of=AS_OF))
        assert expectations and all(e.meta["severity"] in ("critical", "warning") for e in expectations)
