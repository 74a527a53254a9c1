"""account_health, account_segments, the playbook audiences and the incremental
usage rollup (data-contract.md section 3, product.md's playbooks table).

Each test loads hand-made landing files through the real ingest, builds only
the models it needs with `dbt build` (their dbt data tests and unit tests run
too) and checks figures worked out by hand in the comments. The run's time
zone is Asia/Tokyo (UTC+9); timestamps below carry +09:00 unless a test is
about the day boundary. Default vars of dbt_project.yml throughout.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csflow.dbt import run_dbt
from tests.conftest import write_csv

AS_OF = date(2026, 3, 31)  # a Tuesday in ISO week 2026-W14

ACCOUNTS_HEADER = "account_id,account_name,owner_email,created_date"
USAGE_HEADER = "account_id,occurred_at,event_type,event_id,feature"
TICKETS_HEADER = "ticket_id,account_id,opened_at,channel"
SURVEYS_HEADER = "response_id,account_id,responded_at,survey_type,score,contact_id,comment,training_id"
INVOICES_HEADER = "invoice_id,account_id,due_date,amount,paid_date"
EMAILS_HEADER = "account_id,occurred_at,event,contact_id,campaign,product_sku"
WEB_HEADER = "account_id,visited_at,page_url,page_category,product_sku,list_price"
CONTRACTS_HEADER = "contract_id,account_id,plan,start_date,end_date,arr,status,currency"
ORDERS_HEADER = "order_id,account_id,ordered_at,amount,product_sku,product_name"
CONTACTS_HEADER = "contact_id,account_id,email,contact_name"
TRAININGS_HEADER = "training_id,account_id,contact_id,session_date,attended"


def ts(day: date, hour: int = 12, minute: int = 0, offset: str = "+09:00") -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00{offset}"


def ago(days: int, as_of: date = AS_OF) -> date:
    return as_of - timedelta(days=days)


def write(folder: Path, name: str, header: str, rows: Iterable[str]) -> None:
    write_csv(folder, f"{name}.csv", "\n".join([header, *rows]))


def write_accounts(folder: Path, *ids: str) -> None:
    write(folder, "accounts", ACCOUNTS_HEADER, [f"{i},Company {i},csm-{i.lower()}@example.com,2024-01-01" for i in ids])


class Usage:
    """Usage event rows with unique event ids."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    def add(self, account: str, day: date, count: int = 1, feature: str | None = "reports", hour: int = 10) -> None:
        for i in range(count):
            n = len(self.rows)
            event_type = "feature_used" if feature else "login"
            stamp = ts(day, hour, i % 60)
            self.rows.append(f"{account},{stamp},{event_type},E{n:06d},{feature or ''}")

    def write(self, folder: Path) -> None:
        write(folder, "usage_events", USAGE_HEADER, self.rows)


def rows_by(engine: sa.Engine, sql: str, key: str = "account_id") -> dict[Any, dict[str, Any]]:
    with engine.connect() as conn:
        return {r[key]: dict(r) for r in conn.execute(sa.text(sql)).mappings()}


def query(engine: sa.Engine, sql: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]


# --------------------------------------------------------------------------- account_health


def test_health_rescales_weights_over_components_with_data(dbt_build, engine: sa.Engine, tmp_path: Path) -> None:
    """Missing components are null (not zero) and drop out of the weighted mean.

    Default weights: usage trend 0.25, adoption 0.20, NPS 0.15, support 0.15,
    payment 0.15, marketing 0.10.
    """
    landing = tmp_path / "landing"
    write_accounts(landing, "H1", "H2", "H3", "B40", "B70", "B30")
    # Y: created 20 days ago, busy from its first day: too young for a trend or a breadth score.
    with open(landing / "accounts.csv", "a", encoding="utf-8") as f:
        f.write(f"Y,Young,csm-y@example.com,{ago(20)}\n")
    usage = Usage()
    usage.add("Y", ago(10), 40)
    # H1: 10 events 30-59 days ago, 15 in the last 30: change +50% -> 50 + 50 * 0.5 = 75.
    # One feature (reports) in 90 days -> adoption 100 * 1 / 5 = 20.
    usage.add("H1", ago(45), 10)
    usage.add("H1", ago(3), 15)
    usage.write(landing)
    write(
        landing,
        "survey_responses",
        SURVEYS_HEADER,
        [
            f"R1,H1,{ts(ago(40))},nps,8,,,",  # latest NPS 8 -> 80
            f"R2,B40,{ts(ago(5))},nps,4,,,",  # only component: 40 -> yellow (lower bound)
            f"R3,B70,{ts(ago(5))},nps,7,,,",  # 70 -> green (lower bound)
            f"R4,B30,{ts(ago(5))},nps,3,,,",  # 30 -> red
            f"R5,B30,{ts(ago(400))},nps,10,,,",  # older response: not the latest
            f"R6,H3,{ts(ago(5))},csat,1,,,",  # CSAT is not NPS: H3 keeps nps_score null
        ],
    )
    # H3: 2 tickets in 30 days -> support 100 - 100 * 2 / 10 = 80 (one older ticket does not count).
    write(
        landing,
        "support_tickets",
        TICKETS_HEADER,
        [f"T1,H3,{ts(ago(2))},email", f"T2,H3,{ts(ago(29))},chat", f"T3,H3,{ts(ago(31))},web"],
    )
    # H3: of the invoices due in 12 months, one paid on time, one late -> 50;
    # one due 13 months ago (late) is outside the lookback; one not yet due is not judged.
    write(
        landing,
        "invoices",
        INVOICES_HEADER,
        [
            f"I1,H3,{ago(100)},100,{ago(101)}",
            f"I2,H3,{ago(60)},100,{ago(50)}",
            f"I3,H3,{ago(396)},100,{ago(380)}",
            f"I4,H3,{AS_OF + timedelta(days=10)},100,",
        ],
    )
    # H3: 1 open (1 point) + 1 click (3) + 1 web visit (1) in 30 days = 5 points -> 100 * 5 / 10 = 50.
    write(
        landing,
        "email_events",
        EMAILS_HEADER,
        [
            f"H3,{ts(ago(4), 9)},delivered,,news,",
            f"H3,{ts(ago(4), 10)},open,,news,",
            f"H3,{ts(ago(4), 11)},click,,news,",
        ],
    )
    write(landing, "web_visits", WEB_HEADER, [f"H3,{ts(ago(6))},https://x.example/docs/a,docs,,"])

    dbt_build(landing, AS_OF, select="+account_health")
    health = rows_by(engine, "select * from marts.account_health")

    h1 = health["H1"]
    assert (h1["usage_trend_score"], h1["adoption_breadth_score"], h1["nps_score"]) == (75, 20, 80)
    assert h1["support_load_score"] is None and h1["payment_history_score"] is None
    assert h1["marketing_engagement_score"] is None
    # (75 * 0.25 + 20 * 0.20 + 80 * 0.15) / (0.25 + 0.20 + 0.15) = 34.75 / 0.60 = 57.9166... -> 57.92
    assert h1["health_score"] == Decimal("57.92")
    assert h1["health_band"] == "yellow"

    h3 = health["H3"]
    assert h3["usage_trend_score"] is None and h3["adoption_breadth_score"] is None and h3["nps_score"] is None
    assert (h3["support_load_score"], h3["payment_history_score"], h3["marketing_engagement_score"]) == (80, 50, 50)
    # (80 * 0.15 + 50 * 0.15 + 50 * 0.10) / 0.40 = 24.5 / 0.40 = 61.25
    assert h3["health_score"] == Decimal("61.25")

    young = health["Y"]  # its only component would have been usage: 100 (growing from nothing), breadth 20
    assert young["usage_trend_score"] is None and young["adoption_breadth_score"] is None
    assert young["health_score"] is None

    h2 = health["H2"]  # no data at all: no component, no score, no band
    components = [k for k in h2 if k.endswith("_score")]
    assert len(components) == 7 and all(h2[k] is None for k in components)
    assert h2["health_band"] is None and h2["is_declining"] is False

    assert (health["B40"]["health_score"], health["B40"]["health_band"]) == (40, "yellow")
    assert (health["B70"]["health_score"], health["B70"]["health_band"]) == (70, "green")
    assert (health["B30"]["health_score"], health["B30"]["health_band"]) == (30, "red")
    assert {r["as_of_date"] for r in health.values()} == {AS_OF}
    assert all(r["score_change_30d"] is None for r in health.values())  # no history yet


def test_health_history_change_and_weekly_decline(dbt_build, engine: sa.Engine, tmp_path: Path) -> None:
    """Scores are stored per as_of; later runs compare with the stored history.

    K1's and K2's only component is NPS (score = 10 * the latest response).
    All responses are loaded at once; each as_of sees only those up to it.
    """
    landing = tmp_path / "landing"
    write_accounts(landing, "K1", "K2")
    t1 = date(2026, 3, 3)
    weekly = [t1, t1 + timedelta(days=7), t1 + timedelta(days=14), t1 + timedelta(days=21)]
    t5 = t1 + timedelta(days=30)
    k1_scores = [9, 8, 7, 6]  # falls every week
    k2_scores = [9, 8, 9, 6]  # rises once
    rows = []
    for n, (day, s1, s2) in enumerate(zip(weekly, k1_scores, k2_scores, strict=True)):
        rows += [
            f"A{n},K1,{ts(day - timedelta(days=1))},nps,{s1},,,",
            f"B{n},K2,{ts(day - timedelta(days=1))},nps,{s2},,,",
        ]
    rows.append(f"A9,K1,{ts(t5 - timedelta(days=1))},nps,5,,,")
    write(landing, "survey_responses", SURVEYS_HEADER, rows)

    dbt_build(landing, weekly[0], select="+account_health")
    for day in weekly[1:]:
        dbt_build(None, day, select="+account_health")

    history = query(engine, "select * from marts.account_health order by account_id, as_of_date")
    k1 = [r for r in history if r["account_id"] == "K1"]
    assert [(r["as_of_date"], r["health_score"]) for r in k1] == list(zip(weekly, [90, 80, 70, 60], strict=True))
    assert [r["is_declining"] for r in k1] == [False, False, False, True]  # 90 > 80 > 70 > 60
    k2 = [r for r in history if r["account_id"] == "K2"]
    assert [r["is_declining"] for r in k2] == [False] * 4  # 90, 80, 90, 60
    assert all(r["score_change_30d"] is None for r in history)  # nothing stored 30 days before

    # Rerunning an as_of replaces its rows only; the history stays.
    dbt_build(None, weekly[3], select="+account_health")
    dbt_build(None, t5, select="+account_health")
    by_account = {
        r["account_id"]: r for r in query(engine, f"select * from marts.account_health where as_of_date = '{t5}'")
    }
    # t5 - 30 days = t1: K1 50 - 90 = -40; K2 keeps its latest NPS 6: 60 - 90 = -30.
    assert by_account["K1"]["score_change_30d"] == Decimal("-40")
    assert by_account["K2"]["score_change_30d"] == Decimal("-30")
    # t5 - 21 = 2026-03-12 was never built: no weekly trend.
    assert by_account["K1"]["is_declining"] is False
    counts = rows_by(engine, "select account_id, count(*) as n from marts.account_health group by 1")
    assert {k: v["n"] for k, v in counts.items()} == {"K1": 5, "K2": 5}


def test_health_as_of_cut_and_time_zone(dbt_build, warehouse, settings_for, engine: sa.Engine, tmp_path: Path) -> None:
    """Only data up to the end of as_of in the run's time zone counts; --full-refresh keeps the history."""
    landing = tmp_path / "landing"
    write_accounts(landing, "Z1")
    write(
        landing,
        "survey_responses",
        SURVEYS_HEADER,
        [
            # 2026-03-31 14:59 UTC is 23:59 in Tokyo: on as_of.
            f"Z1a,Z1,{ts(AS_OF, 14, 59, 'Z')},nps,5,,,",
            # 2026-03-31 15:00 UTC is 2026-04-01 00:00 in Tokyo: after as_of.
            f"Z1b,Z1,{ts(AS_OF, 15, 0, 'Z')},nps,10,,,",
        ],
    )
    # 2026-03-31 15:30 UTC: 1 April in Tokyo, 31 March in UTC.
    write(landing, "usage_events", USAGE_HEADER, [f"Z1,{ts(AS_OF, 15, 30, 'Z')},login,EZ,"])
    usage_days = "select activity_date, timezone from intermediate.int_usage_rolled_to_account_days"

    dbt_build(landing, AS_OF, select="+account_health")
    assert rows_by(engine, "select * from marts.account_health")["Z1"]["nps_score"] == 50
    assert query(engine, usage_days) == [{"activity_date": AS_OF + timedelta(days=1), "timezone": "Asia/Tokyo"}]
    # Counted in UTC, both responses fall on as_of and the later one (10) is the latest;
    # the usage rollup is recomputed in the new zone.
    dbt_build(None, AS_OF, select="+account_health", timezone="UTC")
    assert rows_by(engine, "select * from marts.account_health")["Z1"]["nps_score"] == 100
    assert query(engine, usage_days) == [{"activity_date": AS_OF, "timezone": "UTC"}]
    dbt_build(None, AS_OF, select="+account_health")
    assert rows_by(engine, "select * from marts.account_health")["Z1"]["nps_score"] == 50
    assert query(engine, usage_days) == [{"activity_date": AS_OF + timedelta(days=1), "timezone": "Asia/Tokyo"}]
    dbt_build(None, AS_OF + timedelta(days=1), select="+account_health")
    next_day = rows_by(engine, "select * from marts.account_health where as_of_date = '2026-04-01'")
    assert next_day["Z1"]["nps_score"] == 100

    run_dbt(
        warehouse, settings_for(warehouse), ["build", "--select", "account_health", "--full-refresh"], use_prefect=False
    )
    kept = query(engine, "select as_of_date from marts.account_health order by 1")
    assert [r["as_of_date"] for r in kept] == [AS_OF, AS_OF + timedelta(days=1)]


# --------------------------------------------------------------------------- account_segments


def test_segments_priority_touch_tier_and_usage_flags(dbt_build, engine: sa.Engine, tmp_path: Path) -> None:
    """Ten accounts: top 10% (1 account) by spend or growing buyers are high priority."""
    landing = tmp_path / "landing"
    ids = [f"S{n}" for n in range(10)]
    write_accounts(landing, *ids)
    # Account currency: JPY for S1 (1,000,000 JPY * 0.0067 = 6,700 USD), USD for the rest.
    write(
        landing,
        "contracts",
        CONTRACTS_HEADER,
        [f"C{n},S{n},standard,2025-06-01,2026-05-31,1000,active,{'JPY' if n == 1 else 'USD'}" for n in range(10)],
    )
    orders = [
        "O0,S0,2025-07-01T10:00:00+09:00,50000,PLAN-ENT,Enterprise plan",  # top spender
        "O1,S1,2025-07-01T10:00:00+09:00,1000000,PLAN-PRO,Professional plan",  # 6,700 USD, not the top
        # S2: 100 < 200 < 300, the latest last: growing buyer.
        "O2a,S2,2025-07-01T10:00:00+09:00,100,,",
        "O2b,S2,2025-08-01T10:00:00+09:00,200,,",
        "O2c,S2,2025-09-01T10:00:00+09:00,300,,",
        # S3: 100 < 200 but then 200 again: not strictly increasing.
        "O3a,S3,2025-07-01T10:00:00+09:00,100,,",
        "O3b,S3,2025-08-01T10:00:00+09:00,200,,",
        "O3c,S3,2025-09-01T10:00:00+09:00,200,,",
        # S4: increasing, but the third order is after as_of.
        "O4a,S4,2025-07-01T10:00:00+09:00,100,,",
        "O4b,S4,2025-08-01T10:00:00+09:00,200,,",
        "O4c,S4,2026-04-01T10:00:00+09:00,300,,",
    ]
    write(landing, "orders", ORDERS_HEADER, orders)
    # S5: 3 pricing page visits in 14 days -> high interest -> medium.
    write(
        landing,
        "web_visits",
        WEB_HEADER,
        [f"S5,{ts(ago(d))},https://x.example/pricing/pro,pricing,PLAN-PRO,60000" for d in (0, 5, 13)],
    )
    # S6: 3 tickets in 30 days -> heavy support need -> low.
    write(landing, "support_tickets", TICKETS_HEADER, [f"T{d},S6,{ts(ago(d))},email" for d in (1, 2, 3)])
    usage = Usage()
    usage.add("S7", ago(10), 100)  # heavy user (100 events in 30 days), one feature
    usage.add("S8", ago(10), 97, feature=None)  # 99 events in all: not heavy
    usage.add("S8", ago(11), 1, feature="alerts")
    usage.add("S8", ago(12), 1, feature="api")
    usage.write(landing)

    dbt_build(landing, AS_OF, select="+account_segments")
    seg = rows_by(engine, "select * from marts.account_segments")
    assert set(seg) == set(ids)
    assert {k: v["priority"] for k, v in seg.items()} == {
        "S0": "high", "S1": "none", "S2": "high", "S3": "none", "S4": "none",
        "S5": "medium", "S6": "low", "S7": "none", "S8": "none", "S9": "none",
    }  # fmt: skip
    # ltv in USD: orders, or contract ARR (1,000) without orders.
    assert seg["S0"]["ltv"] == 50000 and seg["S1"]["ltv"] == Decimal("6700.00") and seg["S2"]["ltv"] == 600
    assert seg["S4"]["ltv"] == 300 and seg["S9"]["ltv"] == 1000
    # 10 accounts: rank 1 high_touch, ranks up to 4 low_touch (S1 6,700; S9, S5.. 1,000 tie at rank 3).
    assert seg["S0"]["touch_tier"] == "high_touch"
    assert seg["S1"]["touch_tier"] == "low_touch"
    assert seg["S2"]["touch_tier"] == "tech_touch"
    assert {k for k, v in seg.items() if v["touch_tier"] == "low_touch"} == {"S1", "S5", "S6", "S7", "S8", "S9"}
    assert (seg["S7"]["features_used_90d"], seg["S7"]["is_single_feature_user"], seg["S7"]["is_heavy_user"]) == (
        1,
        True,
        True,
    )
    assert (seg["S8"]["features_used_90d"], seg["S8"]["is_single_feature_user"], seg["S8"]["is_heavy_user"]) == (
        2,
        False,
        False,
    )
    assert (seg["S9"]["features_used_90d"], seg["S9"]["is_heavy_user"]) == (0, False)


# --------------------------------------------------------------------------- audiences


@pytest.fixture
def audience_landing(tmp_path: Path) -> Path:
    """One positive and at least one negative account (or row) per playbook."""
    landing = tmp_path / "landing"
    accounts = [
        "REN2", "REN4", "REN_EARLY", "REN_LATE", "REN_CHURN",
        "TRN", "SUR", "SUR_RATIO", "SUR_FEW", "DEC", "DEC_20", "NPS", "NPS_OK",
        "ONE", "TWO", "INT_WEB", "INT_MAIL", "INT_LOW", "INT_OLD", "INT_JPY", "CHURNED",
    ]  # fmt: skip
    write_accounts(landing, *accounts)
    # as_of 2026-03-31: + 2 months = 2026-05-31, + 4 months = 2026-07-31.
    contracts = [
        "CREN2,REN2,pro,2025-06-01,2026-05-31,12000,active,USD",  # exactly +2 months: fires
        "CREN4,REN4,pro,2025-08-01,2026-07-31,24000,active,USD",  # exactly +4 months: fires
        "CEARLY,REN_EARLY,pro,2025-05-31,2026-05-30,1000,active,USD",  # a day before the window
        "CLATE,REN_LATE,pro,2025-08-02,2026-08-01,1000,active,USD",  # a day after it
        "CCHURN,REN_CHURN,pro,2025-07-01,2026-06-30,1000,churned,USD",  # not active
        "COLD,CHURNED,pro,2024-01-01,2025-12-31,1000,churned,USD",  # a churned customer
        "CJPY,INT_JPY,pro,2025-06-01,2026-12-31,1000000,active,JPY",
    ]
    write(landing, "contracts", CONTRACTS_HEADER, contracts)
    write(
        landing,
        "contacts",
        CONTACTS_HEADER,
        [f"P{n},TRN,p{n}@trn.example,Person {n}" for n in range(1, 7)] + ["PN,NPS,pn@nps.example,Nina"],
    )
    write(
        landing,
        "trainings",
        TRAININGS_HEADER,
        [
            f"TR1,TRN,P1,{ago(7)},true",  # 7 days before as_of: fires
            f"TR2,TRN,P2,{ago(1)},true",  # 1 day before: fires
            f"TR2,TRN,P3,{ago(1)},false",  # invited, did not attend
            f"TR3,TRN,P4,{AS_OF},true",  # on as_of: not yet
            f"TR4,TRN,P5,{ago(8)},true",  # 8 days before: too old
            f"TR5,TRN,P6,{ago(3)},true",  # already answered the feedback survey
        ],
    )
    tickets = []
    for account, recent, before in (("SUR", 5, 2), ("SUR_RATIO", 6, 4), ("SUR_FEW", 4, 0), ("CHURNED", 8, 0)):
        tickets += [f"T{account}{n},{account},{ts(ago(n % 30))},web" for n in range(recent)]
        tickets += [f"T{account}p{n},{account},{ts(ago(30 + n))},web" for n in range(before)]
    write(landing, "support_tickets", TICKETS_HEADER, tickets)
    write(
        landing,
        "survey_responses",
        SURVEYS_HEADER,
        [
            f'RNPS,NPS,{ts(AS_OF, 9)},nps,6,PN,"Too slow, and support is late",',  # new detractor: fires
            f"RNPS2,NPS,{ts(ago(2))},nps,0,,,",  # 2 days ago: still new (3-day window)
            f"RNPS3,NPS,{ts(ago(3))},nps,2,,,",  # 3 days ago: old
            f"RNPS4,NPS,{ts(AS_OF, 15, 30, 'Z')},nps,1,,,",  # 00:30 on 1 April in Tokyo: after as_of
            f"ROK,NPS_OK,{ts(AS_OF)},nps,7,,,",  # passive
            f"RCH,CHURNED,{ts(AS_OF)},nps,0,,,",  # churned account
            f"RTR,TRN,{ts(ago(2))},training_feedback,5,P6,,TR5",
        ],
    )
    usage = Usage()
    usage.add("DEC", ago(40), 10, feature=None)  # 10 -> 7: down exactly 30%: fires
    usage.add("DEC", ago(5), 7, feature=None)
    usage.add("DEC_20", ago(40), 10, feature=None)  # 10 -> 8: down 20%
    usage.add("DEC_20", ago(5), 8, feature=None)
    usage.add("CHURNED", ago(40), 10, feature="alerts")  # churned accounts get no plays
    usage.add("ONE", ago(100), 3, feature="dashboards")  # before the 90 days
    usage.add("ONE", ago(80), 5, feature="reports")
    usage.add("ONE", ago(10), 5, feature=None)  # logins name no feature
    usage.add("TWO", ago(20), 5, feature="reports")
    usage.add("TWO", ago(20), 5, feature="dashboards", hour=11)
    usage.write(landing)
    write(
        landing,
        "web_visits",
        WEB_HEADER,
        [
            # INT_WEB: 2 pricing visits + 1 high-price product page (12,000 USD) in 14 days: fires.
            f"INT_WEB,{ts(AS_OF)},https://x.example/pricing/ent,pricing,PLAN-ENT,180000",
            f"INT_WEB,{ts(ago(13))},https://x.example/pricing/ent,pricing,PLAN-ENT,180000",
            f"INT_WEB,{ts(ago(13), 13)},https://x.example/products/add-analytics,product,ADD-ANALYTICS,12000",
            f"INT_WEB,{ts(ago(20))},https://x.example/docs/a,docs,,",
            # INT_LOW: 2 pricing visits and a cheap product page (6,000 < 12,000).
            f"INT_LOW,{ts(ago(1))},https://x.example/pricing/pro,pricing,PLAN-PRO,60000",
            f"INT_LOW,{ts(ago(2))},https://x.example/pricing/pro,pricing,PLAN-PRO,60000",
            f"INT_LOW,{ts(ago(3))},https://x.example/products/add-sso,product,ADD-SSO,6000",
            # INT_OLD: the third visit is 14 days ago, outside as_of - 13 .. as_of.
            f"INT_OLD,{ts(ago(1))},https://x.example/pricing/pro,pricing,PLAN-PRO,60000",
            f"INT_OLD,{ts(ago(2))},https://x.example/pricing/pro,pricing,PLAN-PRO,60000",
            f"INT_OLD,{ts(ago(14))},https://x.example/pricing/pro,pricing,PLAN-PRO,60000",
            # INT_JPY: 1,000,000 JPY = 6,700 USD: not high-price; 2 pricing visits.
            f"INT_JPY,{ts(ago(1))},https://x.example/products/add-workflow,product,ADD-WORKFLOW,1000000",
            f"INT_JPY,{ts(ago(2))},https://x.example/products/add-workflow,product,ADD-WORKFLOW,1000000",
            f"INT_JPY,{ts(ago(3))},https://x.example/pricing/pro,pricing,PLAN-PRO,9000000",
            f"INT_JPY,{ts(ago(4))},https://x.example/pricing/pro,pricing,PLAN-PRO,9000000",
        ],
    )
    write(
        landing,
        "email_events",
        EMAILS_HEADER,
        [
            # INT_MAIL: 2 clicks on a cross-sell email (it promotes ADD-API): fires.
            f"INT_MAIL,{ts(ago(4), 9)},delivered,,cross_sell_api,ADD-API",
            f"INT_MAIL,{ts(ago(4), 10)},open,,cross_sell_api,ADD-API",
            f"INT_MAIL,{ts(ago(4), 11)},click,,cross_sell_api,ADD-API",
            f"INT_MAIL,{ts(ago(4), 12)},click,,cross_sell_api,ADD-API",
            # INT_LOW: 1 cross-sell click and 2 newsletter clicks (no product).
            f"INT_LOW,{ts(ago(4), 11)},click,,cross_sell_api,ADD-API",
            f"INT_LOW,{ts(ago(5), 11)},click,,newsletter,",
            f"INT_LOW,{ts(ago(6), 11)},click,,newsletter,",
        ],
    )
    write(landing, "orders", ORDERS_HEADER, ["O1,REN4,2025-08-01T10:00:00+09:00,24000,ADD-API,API Plus add-on"])
    return landing


def test_audiences_pick_the_right_accounts(dbt_build, engine: sa.Engine, audience_landing: Path) -> None:
    dbt_build(audience_landing, AS_OF, select="+tag:audience")

    def audience(name: str) -> dict[str, dict[str, Any]]:
        rows = query(engine, f"select * from marts.audience_{name}")
        assert all(r["playbook"] == name for r in rows)
        assert all(r["owner_email"] == f"csm-{r['account_id'].lower()}@example.com" for r in rows)
        assert all(r["priority"] and r["touch_tier"] for r in rows)
        return {r["occasion_key"]: r for r in rows}

    renewals = audience("renewal_alert")
    assert set(renewals) == {"CREN2:2026-05-31", "CREN4:2026-07-31"}
    assert renewals["CREN4:2026-07-31"]["days_to_renewal"] == 122
    assert renewals["CREN4:2026-07-31"]["arr_base"] == 24000
    assert renewals["CREN2:2026-05-31"]["contact_id"] is None

    surveys = audience("post_training_survey")
    assert set(surveys) == {"TR1:P1", "TR2:P2"}
    assert surveys["TR1:P1"]["contact_id"] == "P1" and surveys["TR1:P1"]["contact_email"] == "p1@trn.example"

    surges = audience("inquiry_surge")
    assert set(surges) == {"SUR:2026-W14"}  # 5 >= 5 and 5 >= 2 * 2; not 6 < 2 * 4, not 4 < 5
    assert (surges["SUR:2026-W14"]["tickets_30d"], surges["SUR:2026-W14"]["tickets_prev_30d"]) == (5, 2)

    declines = audience("usage_decline")
    assert set(declines) == {"DEC:2026-03"}
    assert declines["DEC:2026-03"]["usage_change_pct"] == Decimal("-30.0")

    detractors = audience("nps_detractor")
    assert set(detractors) == {"RNPS", "RNPS2"}
    assert detractors["RNPS"]["nps_score"] == 6
    assert detractors["RNPS"]["comment"] == "Too slow, and support is late"
    assert detractors["RNPS"]["respondent_email"] == "pn@nps.example"

    single = audience("single_feature_cross_sell")
    assert set(single) == {"ONE:2026-03"}
    # TWO uses reports together with dashboards: suggest dashboards to ONE.
    assert (single["ONE:2026-03"]["used_feature"], single["ONE:2026-03"]["suggested_feature"]) == (
        "reports",
        "dashboards",
    )

    interest = audience("high_interest")
    assert set(interest) == {"INT_WEB:2026-W14", "INT_MAIL:2026-W14"}
    web = interest["INT_WEB:2026-W14"]
    assert (web["pricing_page_visits"], web["high_price_product_page_visits"]) == (2, 1)
    assert web["product_of_interest_sku"] == "PLAN-ENT"
    mail = interest["INT_MAIL:2026-W14"]
    assert (mail["cross_sell_clicks"], mail["product_of_interest_sku"]) == (2, "ADD-API")
    assert mail["product_of_interest_name"] == "API Plus add-on"  # named as orders name it

    segments = rows_by(engine, "select * from marts.account_segments")
    assert segments["INT_WEB"]["priority"] == "medium" and segments["INT_LOW"]["priority"] == "none"


# --------------------------------------------------------------------------- incremental usage rollup


ROLLUP = "intermediate.int_usage_rolled_to_account_days"


def rollup_rows(engine: sa.Engine) -> dict[tuple[str, date], dict[str, Any]]:
    return {(r["account_id"], r["activity_date"]): r for r in query(engine, f"select * from {ROLLUP}")}


def test_usage_rollup_incremental_equals_full_refresh(
    dbt_build, warehouse, settings_for, engine: sa.Engine, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    write_accounts(first, "A", "B")
    usage = Usage()
    for days_back in (3, 2, 1):
        usage.add("A", ago(days_back), 4, feature="reports")
        usage.add("B", ago(days_back), 2, feature=None)
    usage.add("A", ago(2), 1, feature="alerts", hour=14)
    # 2026-03-29 16:00 UTC = 2026-03-30 01:00 in Tokyo.
    usage.rows.append(f"B,{ts(ago(2), 16, 0, 'Z')},login,EUTC,")
    usage.write(first)
    dbt_build(first, ago(1), select="+int_usage_rolled_to_account_days")
    before = rollup_rows(engine)
    assert before["A", ago(2)]["event_count"] == 5 and before["A", ago(2)]["features"] == ["alerts", "reports"]
    assert before["B", ago(1)]["event_count"] == 3  # 2 plus the one after midnight in Tokyo

    # Mark an old day: a run that recomputed it would undo the mark.
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"update {ROLLUP} set event_count = event_count + 1000 where activity_date = :d"), {"d": ago(3)}
        )

    # The daily run: one more day of events in a landing folder of its own.
    daily = tmp_path / "daily"
    # It also brings one late event of a day already rolled up (B, yesterday): that day is recomputed.
    new_rows = [f"A,{ts(AS_OF, 9, n)},feature_used,N{n},api" for n in range(3)]
    new_rows.append(f"B,{ts(ago(1), 23, 30)},feature_used,LATE,sso")
    write(daily, "usage_events", USAGE_HEADER, new_rows)
    dbt_build(daily, AS_OF, select="+int_usage_rolled_to_account_days")
    after = rollup_rows(engine)
    assert after["A", AS_OF]["event_count"] == 3 and after["A", AS_OF]["features"] == ["api"]
    assert after["B", ago(1)]["event_count"] == 4 and after["B", ago(1)]["features"] == ["sso"]
    assert after["A", ago(3)]["event_count"] == 1004  # untouched
    for key, row in before.items():
        if key not in (("A", ago(3)), ("B", ago(3)), ("B", ago(1))):
            assert after[key] == row, key
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"update {ROLLUP} set event_count = event_count - 1000 where activity_date = :d"), {"d": ago(3)}
        )

    # A reload of an old day: one event of A's 2026-03-29 is replaced (same key, another feature), one is new.
    reload = tmp_path / "reload"
    write(
        reload,
        "usage_events",
        USAGE_HEADER,
        [f"A,{ts(ago(2), 10, 0)},feature_used,E000006,workflows", f"A,{ts(ago(2), 18)},login,X1,"],
    )
    dbt_build(reload, AS_OF, select="+int_usage_rolled_to_account_days")
    incremental = rollup_rows(engine)
    assert incremental["A", ago(2)]["event_count"] == 6
    assert incremental["A", ago(2)]["features"] == ["alerts", "reports", "workflows"]

    run_dbt(
        warehouse,
        settings_for(warehouse),
        ["build", "--select", "int_usage_rolled_to_account_days", "--full-refresh"],
        use_prefect=False,
    )
    assert rollup_rows(engine) == incremental
