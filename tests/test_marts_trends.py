"""purchase_trends, renewal_windows and kpi_monthly (data-contract.md section 3).

Each test loads hand-made landing files (or generated ones) through the real
ingest, builds only the models it needs with `dbt build` (dbt's data tests and
unit tests of those models run too) and checks figures worked out by hand in
the comments. The run's time zone is Asia/Tokyo (UTC+9) throughout.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from lifetimes.utils import summary_data_from_transaction_data

from csflow.demo import generate
from tests.conftest import write_csv

ACCOUNTS_HEADER = "account_id,account_name,owner_email,created_date,fiscal_year_end_month"


def rows_by(engine: sa.Engine, sql: str, key: str) -> dict[Any, dict[str, Any]]:
    with engine.connect() as conn:
        return {r[key]: dict(r) for r in conn.execute(sa.text(sql)).mappings()}


def write_accounts(folder: Path, *ids: str, fiscal: dict[str, int] | None = None) -> None:
    fiscal = fiscal or {}
    lines = [ACCOUNTS_HEADER] + [f"{i},Company {i},csm@example.com,2024-01-01,{fiscal.get(i, '')}" for i in ids]
    write_csv(folder, "accounts.csv", "\n".join(lines))


# --------------------------------------------------------------------------- renewal_windows

RENEWAL_CASES = {
    # as_of 2026-10-31: +2m = 2026-12-31, +3m = 2027-01-31, +4m = 2027-02-28
    # (no 31 February: PostgreSQL clamps to the month's last day), +6m = 2027-04-30.
    date(2026, 10, 31): {
        "overdue": ("2026-10-30", -1, "overdue", False, False),  # end_date < as_of
        "ends_as_of": ("2026-10-31", 0, "0-2m", False, False),  # not overdue on its last day
        "before_2m": ("2026-12-30", 60, "0-2m", False, False),  # one day before +2m
        "at_2m": ("2026-12-31", 61, "2-4m", True, False),  # exactly +2m: 2-4m
        "before_3m": ("2027-01-30", 91, "2-4m", True, False),  # one day before the target window
        "at_3m": ("2027-01-31", 92, "2-4m", True, True),  # exactly +3m: target window starts
        "at_4m": ("2027-02-28", 120, "2-4m", True, True),  # exactly +4m: still 2-4m
        "after_4m": ("2027-03-01", 121, "4-6m", False, True),  # one day after +4m
        "at_6m": ("2027-04-30", 181, "4-6m", False, True),  # exactly +6m: still 4-6m
        "after_6m": ("2027-05-01", 182, "6m+", False, False),
    },
    # as_of 2026-12-31: +2m = 2027-02-28, +3m = 2027-03-31, +4m = 2027-04-30, +6m = 2027-06-30.
    date(2026, 12, 31): {
        "overdue": ("2026-10-30", -62, "overdue", False, False),
        "ends_as_of": ("2026-12-31", 0, "0-2m", False, False),
        "before_2m": ("2027-02-27", 58, "0-2m", False, False),
        "at_2m": ("2027-02-28", 59, "2-4m", True, False),
        "before_3m": ("2027-03-30", 89, "2-4m", True, False),
        "at_3m": ("2027-03-31", 90, "2-4m", True, True),
        "at_4m": ("2027-04-30", 120, "2-4m", True, True),
        "after_4m": ("2027-05-01", 121, "4-6m", False, True),
        "at_6m": ("2027-06-30", 181, "4-6m", False, True),
        "after_6m": ("2027-07-01", 182, "6m+", False, False),
    },
}


@pytest.mark.parametrize("as_of", list(RENEWAL_CASES), ids=str)
def test_renewal_window_edges(dbt_build, engine: sa.Engine, tmp_path: Path, as_of: date) -> None:
    cases = RENEWAL_CASES[as_of]
    landing = tmp_path / "landing"
    write_accounts(landing, "A1", "A2")
    lines = ["contract_id,account_id,plan,start_date,end_date,arr,status"]
    lines += [f"{cid},A1,pro,2025-09-01,{end},1000,active" for cid, (end, *_) in cases.items()]
    lines += [
        # left out: renewed and churned contracts, whatever their end_date,
        "renewed,A2,pro,2026-01-01,2027-01-15,1000,renewed",
        "churned,A2,pro,2026-01-01,2027-01-15,1000,churned",
        # a contract that starts after as_of (future data),
        "starts_later,A2,pro,2027-01-01,2027-12-31,1000,active",
        # and a contract of an account missing from accounts.csv.
        "unknown_account,ZZ,pro,2026-01-01,2027-01-15,1000,active",
    ]
    write_csv(landing, "contracts.csv", "\n".join(lines))

    dbt_build(landing, as_of, select="+renewal_windows")

    got = rows_by(engine, "select * from marts.renewal_windows", "contract_id")
    assert set(got) == set(cases)
    for cid, (end, days, window, upsell, target) in cases.items():
        row = got[cid]
        assert row["account_id"] == "A1"
        assert row["end_date"] == date.fromisoformat(end)
        assert (row["days_to_renewal"], row["renewal_window"]) == (days, window), cid
        assert (row["is_in_upsell_window"], row["is_in_target_window"]) == (upsell, target), cid


# --------------------------------------------------------------------------- purchase_trends


def test_purchase_trends_windows_growth_and_period_end_share(dbt_build, engine: sa.Engine, tmp_path: Path) -> None:
    # as_of 2026-03-31: last 12 months = days in (2025-03-31, 2026-03-31],
    # prior 12 months = (2024-03-31, 2025-03-31]. Days are Tokyo days.
    landing = tmp_path / "landing"
    write_accounts(landing, "P1", "P2", "P3", "P4", "P5", fiscal={"P1": 3, "P2": 1})
    write_csv(
        landing,
        "contracts.csv",
        """
        contract_id,account_id,plan,start_date,end_date,arr,status,currency
        C2,P2,pro,2025-01-01,2025-12-31,100000,renewed,JPY
        C3,P2,pro,2026-01-01,2026-12-31,100000,active,
        """,
    )
    write_csv(
        landing,
        "orders.csv",
        """
        order_id,account_id,ordered_at,amount,order_type
        p1,P1,2024-03-31T12:00:00+09:00,1000,new
        p2,P1,2024-04-01T00:30:00+09:00,200,upsell
        p3,P1,2025-03-31T23:30:00+09:00,300,upsell
        p4,P1,2025-03-31T15:30:00Z,100,cross_sell
        p5,P1,2026-03-31T20:00:00+09:00,650,upsell
        p6,P1,2026-03-31T16:00:00Z,9999,upsell
        q1,P2,2025-06-01T10:00:00+09:00,500,new
        q2,P2,2025-12-15T10:00:00+09:00,100,upsell
        q3,P2,2026-01-10T10:00:00+09:00,200,upsell
        q4,P2,2026-02-01T10:00:00+09:00,300,upsell
        r1,P3,2026-01-01T10:00:00+09:00,100,new
        r2,P3,2026-02-01T10:00:00+09:00,100,upsell
        r3,P3,2026-03-01T10:00:00+09:00,200,upsell
        s1,P4,2026-01-01T10:00:00+09:00,10,new
        s2,P4,2026-02-01T10:00:00+09:00,20,upsell
        z1,ZZ,2026-01-01T10:00:00+09:00,50,new
        """,
    )

    dbt_build(landing, date(2026, 3, 31), select="+purchase_trends")

    got = rows_by(engine, "select * from marts.purchase_trends", "account_id")
    # P5 has no order; ZZ is not an account (its order is kept in raw, flagged).
    assert set(got) == {"P1", "P2", "P3", "P4"}

    p1 = got["P1"]
    # p1 is on 2024-03-31, the prior window's open lower end: in neither window.
    # p2 (2024-04-01) and p3 (2025-03-31 23:30 Tokyo) are in the prior window: 500.
    # p4 is 2025-03-31 15:30 UTC = 2025-04-01 00:30 Tokyo: last window, with p5: 750.
    # p6 is 2026-03-31 16:00 UTC = 2026-04-01 01:00 Tokyo: after as_of, never counts.
    assert p1["order_count"] == 5
    assert p1["total_amount"] == Decimal("2250")
    assert p1["first_order_date"] == date(2024, 3, 31)
    assert p1["last_order_date"] == date(2026, 3, 31)
    assert p1["amount_last_12m"] == Decimal("750")
    assert p1["amount_prior_12m"] == Decimal("500")
    assert float(p1["growth_rate_12m"]) == pytest.approx(0.5)  # (750 - 500) / 500
    # last three orders 300, 100, 650: not increasing.
    assert p1["is_growing"] is False
    # Fiscal year ends in March: February and March spend = p1 + p3 + p5 =
    # 1000 + 300 + 650 = 1950 of 2250 (p4 falls on 1 April in Tokyo).
    assert float(p1["period_end_share"]) == pytest.approx(1950 / 2250)
    assert p1["currency"] == "USD"  # no contract: base currency

    p2 = got["P2"]
    # All four orders are in the last 12 months; none before: growth unknown.
    assert (p2["amount_last_12m"], p2["amount_prior_12m"]) == (Decimal("1100"), Decimal("0"))
    assert p2["growth_rate_12m"] is None
    assert p2["is_growing"] is True  # 100 < 200 < 300
    # Fiscal year ends in January: December and January spend = 100 + 200 of 1100.
    assert float(p2["period_end_share"]) == pytest.approx(300 / 1100)
    # Its latest contract names no currency; the one before says JPY.
    assert p2["currency"] == "JPY"

    p3 = got["P3"]
    assert p3["is_growing"] is False  # 100, 100, 200: not strictly
    assert p3["period_end_share"] is None  # fiscal year end unknown
    assert p3["growth_rate_12m"] is None

    p4 = got["P4"]
    assert p4["is_growing"] is False  # 10 < 20, but fewer than three orders
    assert p4["order_count"] == 2


def test_btyd_summary_matches_lifetimes(dbt_build, engine: sa.Engine, tmp_path: Path) -> None:
    as_of = date(2026, 3, 31)
    landing = tmp_path / "landing"
    generate(landing, accounts=150, seed=11, as_of=as_of)

    dbt_build(landing, as_of, select="+purchase_trends")

    with engine.connect() as conn:
        orders = pd.read_sql_query(
            sa.text(
                "select account_id, (ordered_at at time zone 'Asia/Tokyo')::date as order_date, "
                "amount::float8 as amount from staging.stg_landing__orders"
            ),
            conn,
        )
        ours = pd.read_sql_query(
            sa.text(
                "select account_id, frequency, recency_days, tenure_days, monetary_value::float8 "
                "as monetary_value from marts.purchase_trends"
            ),
            conn,
        ).set_index("account_id")
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    # The generated data plants several orders on one day for some accounts.
    assert orders.duplicated(["account_id", "order_date"]).any()

    expected = summary_data_from_transaction_data(
        orders,
        "account_id",
        "order_date",
        monetary_value_col="amount",
        freq="D",
        observation_period_end=pd.Timestamp(as_of),
    )
    assert len(expected) > 100
    assert sorted(ours.index) == sorted(expected.index)
    for account_id, want in expected.iterrows():
        got = ours.loc[account_id]
        assert got["frequency"] == want["frequency"], account_id
        assert got["recency_days"] == want["recency"], account_id
        assert got["tenure_days"] == want["T"], account_id
        assert got["monetary_value"] == pytest.approx(want["monetary_value"], abs=1e-6), account_id


# --------------------------------------------------------------------------- kpi_monthly


@pytest.fixture
def kpi_landing(tmp_path: Path) -> Path:
    """Eight accounts around March and April 2026; as_of is 2026-04-10.

    Rates are fx_to_base's defaults: JPY 0.0067, EUR 1.08 (USD is base).
    """
    landing = tmp_path / "landing"
    write_accounts(landing, *(f"A{i}" for i in range(1, 10)))
    write_csv(
        landing,
        "contracts.csv",
        """
        contract_id,account_id,plan,start_date,end_date,arr,status,currency
        a1,A1,pro,2025-04-01,2026-03-31,1000,renewed,
        a2,A1,pro,2026-04-01,2027-03-31,1200,active,
        b1,A2,pro,2025-06-01,2026-05-31,150000,active,JPY
        c1,A3,pro,2025-03-15,2026-03-14,500,churned,USD
        d1,A4,pro,2025-03-20,2026-03-19,1000,renewed,EUR
        d2,A4,pro,2026-03-20,2027-03-19,800,active,EUR
        e1,A5,pro,2026-03-10,2027-03-09,600,active,USD
        f1,A6,pro,2025-02-01,2026-02-28,200,active,USD
        g1,A7,pro,2025-04-06,2026-04-05,300,churned,USD
        h1,A8,pro,2025-04-11,2026-04-10,400,churned,USD
        i1,A9,pro,2026-05-01,2027-04-30,999,active,USD
        """,
    )
    write_csv(
        landing,
        "orders.csv",
        """
        order_id,account_id,ordered_at,amount,order_type
        o1,A1,2026-03-05T10:00:00+09:00,100,upsell
        o2,A2,2026-03-31T23:00:00+09:00,100,cross_sell
        o3,A2,2026-03-31T16:00:00Z,100,upsell
        o4,A5,2026-03-20T10:00:00+09:00,100,upsell
        o5,A4,2026-03-02T10:00:00+09:00,100,upsell
        o6,A4,2026-03-25T10:00:00+09:00,100,upsell
        o7,A6,2026-03-10T10:00:00+09:00,100,new
        o8,A1,2026-04-11T10:00:00+09:00,100,upsell
        """,
    )
    write_csv(
        landing,
        "survey_responses.csv",
        """
        response_id,account_id,responded_at,survey_type,score
        n01,A1,2026-02-28T16:00:00Z,nps,10
        n02,A1,2026-03-02T10:00:00+09:00,nps,9
        n03,A2,2026-03-03T10:00:00+09:00,nps,9
        n04,A2,2026-03-04T10:00:00+09:00,nps,10
        n05,A3,2026-03-05T10:00:00+09:00,nps,7
        n06,A4,2026-03-06T10:00:00+09:00,nps,8
        n07,A4,2026-03-07T10:00:00+09:00,nps,7
        n08,A6,2026-03-08T10:00:00+09:00,nps,0
        n09,A7,2026-03-09T10:00:00+09:00,nps,6
        n10,A8,2026-03-10T10:00:00+09:00,nps,5
        n11,A8,2026-03-31T15:30:00Z,nps,0
        n12,A1,2026-04-11T10:00:00+09:00,nps,10
        n13,ZZ,2026-03-11T10:00:00+09:00,nps,0
        s01,A1,2026-03-12T10:00:00+09:00,csat,4
        s02,A2,2026-03-13T10:00:00+09:00,csat,5
        s03,A3,2026-03-14T10:00:00+09:00,csat,3
        t01,A3,2026-03-14T10:00:00+09:00,training_feedback,1
        """,
    )
    return landing


def test_kpi_monthly_retention_nps_and_expansion(dbt_build, engine: sa.Engine, kpi_landing: Path) -> None:
    dbt_build(kpi_landing, date(2026, 4, 10), select="+kpi_monthly")
    got = rows_by(engine, "select * from marts.kpi_monthly", "month")

    # Earliest contract start is f1 on 2025-02-01; the last month is as_of's:
    # 2025-02 .. 2026-04 = 15 months (i1 starts after as_of and is ignored).
    assert min(got) == date(2025, 2, 1) and max(got) == date(2026, 4, 1) and len(got) == 15

    # February 2026 (closes on 2026-03-01): active on 02-01 are A1 (a1), A2,
    # A3, A4 (d1), A6 (f1 ends 02-28 but is still `active`: an overdue renewal
    # stays covered until as_of), A7, A8 = 7, all still active on 03-01.
    feb = got[date(2026, 2, 1)]
    assert (feb["active_accounts_start"], feb["churned_accounts"]) == (7, 0)
    assert float(feb["gross_revenue_retention"]) == pytest.approx(1)
    assert float(feb["net_revenue_retention"]) == pytest.approx(1)
    assert feb["nps"] is None and feb["csat_avg"] is None  # no responses: unknown, not 0
    assert feb["is_complete_month"] is True

    # March 2026 (closes on 2026-04-01). Active on 03-01: A1, A2, A3, A4, A6,
    # A7, A8 = 7 (A5 starts on 03-10). A3's churned contract ended 03-14:
    # churned = 1, logo retention 6/7.
    mar = got[date(2026, 3, 1)]
    assert (mar["active_accounts_start"], mar["churned_accounts"]) == (7, 1)
    assert float(mar["logo_retention_rate"]) == pytest.approx(6 / 7)
    # ARR in USD at 03-01 -> at 04-01:
    #   A1 1000 -> 1200 (renewed into a2, expansion)   capped 1000
    #   A2 150000 JPY * 0.0067 = 1005 -> 1005           1005
    #   A3 500 -> 0 (churned)                           0
    #   A4 1000 EUR * 1.08 = 1080 -> 800 EUR = 864      864
    #   A6 200 -> 200 (overdue, still covered)          200
    #   A7 300 -> 300, A8 400 -> 400                    700
    # start 4485, end 3969, capped 3769.
    assert float(mar["gross_revenue_retention"]) == pytest.approx(3769 / 4485)
    assert float(mar["net_revenue_retention"]) == pytest.approx(3969 / 4485)
    # NPS: 10 responses dated in March in Tokyo (n01 is 2026-03-01 01:00 there;
    # n11 is 04-01 00:30 there; ZZ is no account): promoters n01-n04 (4),
    # passives n05-n07 (3), detractors n08-n10 (3) -> 40% - 30% = 10.
    assert mar["nps_response_count"] == 10
    assert float(mar["nps"]) == pytest.approx(10)
    assert float(mar["csat_avg"]) == pytest.approx(4)  # (4 + 5 + 3) / 3; training feedback ignored
    # Upsell in March by accounts active on 03-01: A1 (o1), A4 (o5, o6) = 2/7;
    # o3 is on 04-01 in Tokyo, A5 was not active on 03-01, o7 is a `new` order.
    assert float(mar["upsell_rate"]) == pytest.approx(2 / 7)
    assert float(mar["cross_sell_rate"]) == pytest.approx(1 / 7)  # A2 (o2, 23:00 on 03-31)

    # April 2026, partial: counts data up to as_of and closes on as_of.
    # Active on 04-01: A1 1200, A2 1005, A4 864, A5 600, A6 200, A7 300, A8 400 = 7
    # (ARR 4569). A7's churned contract ended 04-05: churned. A8's ends on
    # as_of itself: still covered, not churned yet.
    apr = got[date(2026, 4, 1)]
    assert apr["is_complete_month"] is False and apr["month_end_date"] == date(2026, 4, 10)
    assert (apr["active_accounts_start"], apr["churned_accounts"]) == (7, 1)
    assert float(apr["gross_revenue_retention"]) == pytest.approx(4269 / 4569)
    assert float(apr["net_revenue_retention"]) == pytest.approx(4269 / 4569)
    # One response by as_of (n11, 0): -100; n12 is after as_of.
    assert (apr["nps_response_count"], float(apr["nps"])) == (1, pytest.approx(-100))
    # o3 (A2, 04-01 01:00 in Tokyo) counts; o8 is after as_of.
    assert float(apr["upsell_rate"]) == pytest.approx(1 / 7)
    assert float(apr["cross_sell_rate"]) == 0
