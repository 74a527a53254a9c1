"""account_signals_daily: one row per account per day, each day seeing only data on or before it.

Hand-made landing files (time zone Asia/Tokyo), a nightly build for AS_OF,
then `build_signal_history` for the 16 days before; every figure below is
worked out by hand in the comments.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from csflow.backtests import run_backtest
from csflow.signals import build_signal_history
from csflow.warehouse import Warehouse
from tests.test_marts_health import (
    CONTRACTS_HEADER,
    INVOICES_HEADER,
    SURVEYS_HEADER,
    TICKETS_HEADER,
    USAGE_HEADER,
    WEB_HEADER,
    Usage,
    ago,
    query,
    ts,
    write,
)

AS_OF = date(2026, 3, 31)


@pytest.fixture
def signals(warehouse: Warehouse, dbt_build, settings_for, tmp_path: Path):
    landing = tmp_path / "landing"
    write(
        landing,
        "accounts",
        "account_id,account_name,owner_email,created_date",
        ["A,Alpha,csm@example.com,2024-01-01", f"B,Beta,csm@example.com,{ago(11)}"],
    )
    usage = Usage()
    usage.add("A", ago(5), 10)  # reports, by U1 and U2
    usage.add("A", ago(40), 20)  # by U1 and U3
    usage.add("A", ago(100), 3, feature="exports")  # counts among features until ago(11); by U4
    users = ["U1", "U2"] * 5 + ["U1", "U3"] * 10 + ["U4"] * 3
    write(landing, "usage_events", USAGE_HEADER + ",user_id", [f"{row},{user}" for row, user in zip(usage.rows, users, strict=True)])
    write(landing, "support_tickets", TICKETS_HEADER, [f"T1,A,{ts(ago(2))},email", f"T2,A,{ts(ago(2))},chat", f"T3,A,{ts(ago(35))},web"])
    write(
        landing,
        "invoices",
        INVOICES_HEADER,
        [f"I1,A,{ago(20)},100,{ago(10)}", f"I2,A,{ago(5)},100,", f"I3,A,{ago(30)},100,{ago(30)}"],
    )
    write(
        landing,
        "survey_responses",
        SURVEYS_HEADER,
        [f"R1,A,{ts(ago(200))},nps,3,,,", f"R2,A,{ts(ago(8))},nps,9,,,", f"R3,A,{ts(ago(8), 15)},nps,7,,,"],
    )
    write(
        landing,
        "web_visits",
        WEB_HEADER,
        [f"A,{ts(ago(3))},/pricing,pricing,,", f"A,{ts(ago(3), 13)},/pricing,pricing,,", f"A,{ts(ago(20))},/pricing,pricing,,"],
    )
    write(landing, "contracts", CONTRACTS_HEADER, ["C1,A,pro,2025-06-01,2026-05-31,1200,active,USD"])
    dbt_build(landing, AS_OF, select="+account_signals_daily")
    history = build_signal_history(warehouse, settings_for(warehouse), ago(15), AS_OF)
    engine = warehouse.engine()
    rows = {
        (r["account_id"], r["signal_date"]): r
        for r in query(engine, "select * from marts.account_signals_daily order by account_id, signal_date")
    }
    engine.dispose()
    return history, rows


def test_each_day_counts_what_happened_by_then(signals) -> None:
    history, rows = signals
    # A: 16 days (ago(15)..AS_OF); B exists from its created_date ago(11): 12 days.
    assert (history.rows, history.accounts) == (28, 2) and len(rows) == 28
    today = rows["A", AS_OF]
    assert (today["events_30d"], today["events_prev_30d"], float(today["usage_change"])) == (10, 20, -0.5)
    assert today["features_used_90d"] == 1  # exports was last used 100 days ago
    assert (today["active_users_30d"], today["active_users_prev_30d"]) == (2, 2)  # U1, U2; then U1, U3
    assert (today["tickets_30d"], today["tickets_prev_30d"]) == (2, 1)
    assert today["overdue_invoices"] == 1  # I2, due ago(5) and unpaid; I1 was paid on ago(10)
    assert (today["nps_score_latest"], today["nps_age_days"]) == (7, 8)  # the later of ago(8)'s two answers
    assert today["pricing_page_visits"] == 2  # ago(20) is outside the 14-day window
    assert (today["days_to_renewal"], float(today["arr_base"])) == (61, 1200)
    assert today["account_age_days"] == (AS_OF - date(2024, 1, 1)).days == 820

    earlier = rows["A", ago(15)]
    # ago(5)'s events had not happened; ago(40) is 25 days back; ago(100) is 85 days back (not 30-59).
    assert (earlier["events_30d"], earlier["events_prev_30d"]) == (20, 0)
    assert earlier["usage_change"] is None
    assert earlier["features_used_90d"] == 2
    # ago(15): ago(40)'s U1 and U3 in the last 30 days; ago(100)'s U4 is 85 days back (not 30-59).
    assert (earlier["active_users_30d"], earlier["active_users_prev_30d"]) == (2, 0)
    assert rows["A", ago(11)]["active_users_30d"] == 2 and rows["A", ago(10)]["active_users_30d"] == 0
    assert (earlier["nps_score_latest"], earlier["nps_age_days"]) == (3, 185)  # from before the grid
    assert rows["A", ago(11)]["features_used_90d"] == 2 and rows["A", ago(10)]["features_used_90d"] == 1
    # I1: overdue the day after it fell due until the day it was paid.
    assert [rows["A", ago(d)]["overdue_invoices"] for d in (15, 11, 10, 5, 4)] == [1, 1, 0, 0, 1]

    young = rows["B", AS_OF]
    assert (young["account_age_days"], young["events_30d"], young["features_used_90d"]) == (11, 0, 0)
    assert ("B", ago(12)) not in rows


def test_a_range_built_again_is_replaced_not_doubled(signals, warehouse: Warehouse, settings_for) -> None:
    history, rows = signals
    again = build_signal_history(warehouse, settings_for(warehouse), ago(3), AS_OF)
    assert (again.rows, again.accounts) == (8, 2)
    engine = warehouse.engine()
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from marts.account_signals_daily")).scalar_one() == 28
    engine.dispose()


def test_days_after_the_latest_run_are_refused(signals, warehouse: Warehouse, settings_for) -> None:
    with pytest.raises(ValueError, match="after the latest run's as_of 2026-03-31"):
        build_signal_history(warehouse, settings_for(warehouse), AS_OF, date(2026, 4, 2))


# --------------------------------------------------------------------------
# Backtests: usage_decline at two settings over ago(60)..ago(15), horizon 30 days.
#
# D: 20 events on ago(80), 12 on ago(50): from ago(50) to ago(21) the last 30
#    days hold 12 against 20 before (-40%); from ago(20), 0 against 12 (-100%).
#    Its contract ends churned on ago(20).
# R: 30 events on ago(70): from ago(40) to ago(11), 0 against 30 (-100%).
#    Its contract ends on ago(25) and a larger one follows: renewed, expanded.
# S: 10 events every 10 days: every window holds 30, never a decline.
# One firing per account per month, on the first day the rule holds:
#   drop 0.3: Feb: D ago(50), R ago(40); Mar: D ago(30), R ago(30).
#   drop 0.5: Feb: R ago(40); Mar: R ago(30), D ago(20) (its horizon ends
#   after as_of: not judged, and a firing on the day of the churn is no warning).
# Churners in the range: D (March), warned 30 days ahead by 0.3, not by 0.5.


@pytest.fixture
def backtest_history(warehouse: Warehouse, dbt_build, settings_for, tmp_path: Path):
    landing = tmp_path / "landing"
    write(
        landing,
        "accounts",
        "account_id,account_name,owner_email,created_date",
        [f"{a},Company {a},csm@example.com,2025-01-01" for a in "DRS"],
    )
    usage = Usage()
    usage.add("D", ago(80), 20)
    usage.add("D", ago(50), 12)
    usage.add("R", ago(70), 30)
    for days in range(120, -1, -10):
        usage.add("S", ago(days), 10)
    usage.write(landing)
    write(
        landing,
        "contracts",
        CONTRACTS_HEADER,
        [
            f"C-D,D,pro,2025-03-12,{ago(20)},1200,churned,USD",
            f"C-R1,R,pro,2025-03-07,{ago(25)},1200,renewed,USD",
            f"C-R2,R,pro,{ago(24)},2027-03-06,2400,active,USD",
            f"C-S1,S,pro,2025-02-20,{ago(40)},1200,renewed,USD",
            f"C-S2,S,pro,{ago(39)},2027-02-19,1200,active,USD",
        ],
    )
    dbt_build(landing, AS_OF, select="+account_signals_daily")
    settings = settings_for(warehouse)
    build_signal_history(warehouse, settings, ago(60), ago(15))
    return settings


def test_a_backtest_counts_firings_outcomes_recall_and_lead_time(warehouse: Warehouse, backtest_history) -> None:
    result = run_backtest(
        warehouse, backtest_history, "usage_decline", ["usage_decline_min_drop=0.3,0.5"], ago(60), ago(15), horizon=30
    )
    engine = warehouse.engine()
    rows = query(engine, "select * from marts.play_backtests order by setting, month")
    engine.dispose()
    got = [
        (r["setting"], r["month"].isoformat()[:7], r["firings"], r["firings_judged"], r["churned"], r["renewed"],
         r["expanded"], r["churners"], r["churners_reached"], r["lead_days"])
        for r in rows
    ]
    assert got == [
        ("usage_decline_min_drop=0.3", "2026-02", 2, 2, 1, 1, 1, 0, 0, None),
        ("usage_decline_min_drop=0.3", "2026-03", 2, 2, 1, 1, 1, 1, 1, [30]),
        ("usage_decline_min_drop=0.5", "2026-02", 1, 1, 0, 1, 1, 0, 0, None),
        ("usage_decline_min_drop=0.5", "2026-03", 2, 1, 0, 1, 1, 1, 0, None),
    ]
    loose, strict = result.summaries
    assert (loose.setting, loose.firings, loose.precision, loose.recall, loose.median_lead_days) == (
        "usage_decline_min_drop=0.3", 4, 0.5, 1.0, 30
    )
    assert (strict.firings, strict.judged, strict.precision, strict.recall, strict.median_lead_days) == (3, 2, 0.0, 0.0, None)

    # The same play and setting again, over a shorter range: its rows are replaced, not added to.
    run_backtest(warehouse, backtest_history, "usage_decline", ["usage_decline_min_drop=0.3"], ago(30), ago(15), horizon=30)
    engine = warehouse.engine()
    months = query(engine, "select setting, month from marts.play_backtests order by setting, month")
    engine.dispose()
    assert [(m["setting"][-3:], m["month"].month) for m in months] == [("0.3", 3), ("0.5", 2), ("0.5", 3)]


def test_backtest_mistakes_are_named(warehouse: Warehouse, backtest_history) -> None:
    with pytest.raises(ValueError, match="no rule over the daily signals"):
        run_backtest(warehouse, backtest_history, "renewal_alert", [], ago(60), ago(15))
    with pytest.raises(ValueError, match="no such var"):
        run_backtest(warehouse, backtest_history, "usage_decline", ["usage_decline_min_dorp=0.2"], ago(60), ago(15))
    with pytest.raises(ValueError, match="values must be numbers"):
        run_backtest(warehouse, backtest_history, "usage_decline", ["usage_decline_min_drop=0.2;drop"], ago(60), ago(15))
    with pytest.raises(ValueError, match="holds 46 of the 61 days"):
        run_backtest(warehouse, backtest_history, "usage_decline", [], ago(75), ago(15))


def test_the_commands_print_a_table_and_write_a_report(backtest_history, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from csflow.cli import app

    settings = backtest_history
    monkeypatch.setenv("CSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CSFLOW_STATE_DIR", str(settings.state_dir))
    runner = CliRunner()
    built = runner.invoke(app, ["signals", "backfill", "--from", str(ago(20)), "--to", str(ago(15))])
    assert built.exit_code == 0, built.output
    assert "account_signals_daily: 18 rows for 3 accounts" in built.output

    args = ["backtest", "--play", "usage_decline", "--set", "usage_decline_min_drop=0.3,0.5", "--horizon", "30"]
    result = runner.invoke(app, [*args, "--from", str(ago(60)), "--to", str(ago(15))], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "horizon 30 days" in result.output
    lines = [line.split() for line in result.output.splitlines() if "min_drop=" in line]
    assert lines == [
        ["min_drop=0.3", "4", "4", "2", "50%", "1", "100%", "30"],
        ["min_drop=0.5", "3", "2", "0", "0%", "1", "0%", "-"],
    ]
    report = settings.state_dir.resolve() / "reports" / "backtest-usage_decline.html"
    page = report.read_text(encoding="utf-8")
    assert "usage_decline_min_drop=0.5" in page and page.count("<svg") == 2

    bad = runner.invoke(app, [*args, "--from", "2026-02-30", "--to", str(ago(15))])
    assert bad.exit_code == 1 and "--from: '2026-02-30' is not a date" in bad.output
