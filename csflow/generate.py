"""Synthetic landing files that exercise every csflow playbook.

`csflow demo`, the tests and the benchmarks need realistic data without a
customer's export, so this module writes every landing file of the contract
(`csflow.contract.ENTITIES`) for N accounts as of a date.

Design notes for newcomers:
- Streaming: accounts are processed in chunks of CHUNK_ACCOUNTS. Each chunk's
  rows are appended to one open writer per entity and then dropped, so 100k
  accounts (~50M usage events) fit in bounded memory.
- Determinism: every (chunk, entity) pair draws from its own seed
  (`SeedSequence(seed, spawn_key=(chunk, entity))`) and ids are numbered in
  chunk order, so the same (accounts, seed, as_of, fmt) always gives
  byte-identical files.
- Time: each account has one UTC offset. Timestamps are computed as *local
  wall-clock seconds* and written with that offset. Nothing lies after the end
  of as_of, neither in local time nor in UTC, nor after `not_after` (the
  demo passes now, so data for today never lies in the future; see `_Chunk.limit`).
- Cohorts the playbooks look for are planted on purpose (COHORT_SHARE): usage
  decline, single-feature use, support surges, pricing-page interest,
  cross-sell clicks, new NPS detractors, recent trainings, renewals in every
  window, growing/shrinking buyers, fiscal-year-end buyers, late payers.
- Every value is written as the string the contract allows (ISO dates,
  ISO 8601 timestamps with offset, money with 2 decimals, true/false), in CSV
  and parquet alike, so both formats hold the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from csflow.contract import ENTITIES

FORMATS = ("csv", "parquet")
CHUNK_ACCOUNTS = 2_000
HISTORY_DAYS = 396  # activity streams (usage, web, email, support, ...) cover ~13 months
DAY = 86_400
EPOCH = date(1970, 1, 1)
ACCOUNTS_PER_CSM = 40
# Usage events per account over the whole history window; accounts that are
# newer or churned fill only part of it, which brings the mean to ~500.
USAGE_EVENTS_PER_ACCOUNT = 580
WEB_VISITS_PER_ACCOUNT = 25
EMAILS_PER_ACCOUNT_YEAR = 10
JPY_PER_USD = 150
SITE = "https://www.example.com"

# Share of accounts planted in each cohort, per chunk (of the eligible accounts: e.g. only
# customers that are still active and old enough to show the signal).
COHORT_SHARE: dict[str, float] = {
    "usage_decline": 0.10,  # last 30 days of usage at 15-50% of the 30 before
    "single_feature": 0.08,  # uses exactly one feature
    "dormant": 0.05,  # almost no usage at all
    "support_surge": 0.04,  # >= 5 tickets in 30 days and >= 2x the 30 before
    "pricing_interest": 0.05,  # >= 3 pricing page visits in the last 2 weeks
    "cross_sell_clicks": 0.04,  # >= 2 clicks on a cross-sell email in the last 2 weeks
    "new_detractor": 0.03,  # NPS 0-6 with a comment in the last 3 days
    "recent_training": 0.06,  # a training session 1-7 days before as_of
    "late_payer": 0.08,  # pays invoices weeks after their due date
    "fiscal_year_buyer": 0.35,  # of accounts with a known fiscal year end
    "growing_buyer": 0.15,  # last three order amounts strictly increase
    "shrinking_buyer": 0.08,  # last three order amounts strictly decrease
    "same_day_orders": 0.10,  # two orders on one day at least once
}
# Contract situation of each account: (state, share of the accounts).
CONTRACT_STATES: tuple[tuple[str, float], ...] = (
    ("renewing", 0.89),  # active contract ending within the next 12 months
    ("churned", 0.04),  # last contract churned within the past ~11 months
    ("overdue", 0.04),  # active contract already past its end_date
    ("ends_in_2m", 0.015),  # end_date exactly as_of + 2 calendar months
    ("ends_in_4m", 0.015),  # end_date exactly as_of + 4 calendar months
)

REGIONS = ("JP", "APAC", "NA", "EU")
REGION_SHARE = (0.45, 0.15, 0.25, 0.15)
OFFSETS = ("+09:00", "Z", "+08:00", "+10:00", "-05:00", "-08:00", "+01:00")
OFFSET_SECONDS = np.array([9, 0, 8, 10, -5, -8, 1]) * 3600
# Offsets used by each region (rows follow REGIONS, columns follow OFFSETS).
REGION_OFFSET_SHARE = np.array(
    [
        [0.85, 0.15, 0, 0, 0, 0, 0],
        [0, 0.10, 0.60, 0.30, 0, 0, 0],
        [0, 0.20, 0, 0, 0.50, 0.30, 0],
        [0, 0.50, 0, 0, 0, 0, 0.50],
    ]
)
# Fiscal year end month (column 0 = unknown) for non-Japanese and Japanese accounts.
FISCAL_MONTH_SHARE = np.zeros((2, 13))
FISCAL_MONTH_SHARE[0, [0, 12, 3, 6, 9, 1, 4]] = (0.15, 0.55, 0.08, 0.08, 0.08, 0.03, 0.03)
FISCAL_MONTH_SHARE[1, [0, 3, 12, 6, 9, 1]] = (0.08, 0.70, 0.12, 0.03, 0.04, 0.03)

INDUSTRIES = ("manufacturing", "software", "retail", "finance", "healthcare", "logistics", "education", "media")

PLANS = ("starter", "standard", "professional", "enterprise")
PLAN_SHARE = (0.40, 0.30, 0.20, 0.10)
PLAN_ARR_USD = np.array([6_000, 24_000, 60_000, 180_000])
PLAN_ARR_SIGMA = np.array([0.35, 0.40, 0.50, 0.80])  # enterprise has the longest tail
EXTRA_ORDERS_PER_YEAR = np.array([0.4, 0.6, 1.0, 1.5])  # upsell and cross-sell orders
TICKETS_PER_YEAR = np.array([2.0, 4.0, 8.0, 14.0])


class Product(NamedTuple):
    sku: str
    name: str
    list_price_usd: int
    kind: str  # plan, upsell or cross_sell
    feature: str | None = None  # the product feature a cross-sell add-on unlocks


CATALOGUE: tuple[Product, ...] = (
    Product("PLAN-STARTER", "Starter plan (annual)", 6_000, "plan"),
    Product("PLAN-STANDARD", "Standard plan (annual)", 24_000, "plan"),
    Product("PLAN-PRO", "Professional plan (annual)", 60_000, "plan"),
    Product("PLAN-ENT", "Enterprise plan (annual)", 180_000, "plan"),
    Product("SEATS-10", "Additional seats x10", 3_000, "upsell"),
    Product("SEATS-50", "Additional seats x50", 12_000, "upsell"),
    Product("SUPPORT-PREMIUM", "Premium support", 20_000, "upsell"),
    Product("ADD-ANALYTICS", "Advanced Analytics add-on", 12_000, "cross_sell", "analytics"),
    Product("ADD-SSO", "SSO & SCIM add-on", 6_000, "cross_sell", "sso"),
    Product("ADD-API", "API Plus add-on", 9_000, "cross_sell", "api"),
    Product("ADD-WORKFLOW", "Workflow Automation add-on", 15_000, "cross_sell", "workflows"),
    Product("ADD-INTEGRATIONS", "Integration Hub add-on", 8_000, "cross_sell", "integrations"),
)
PLAN_PRODUCT = np.array([0, 1, 2, 3])  # CATALOGUE index of each plan's product
UPSELL_PRODUCTS = np.array([i for i, p in enumerate(CATALOGUE) if p.kind == "upsell"])
CROSS_SELL_PRODUCTS = np.array([i for i, p in enumerate(CATALOGUE) if p.kind == "cross_sell"])
ORDER_TYPES = ("new", "renewal", "upsell", "cross_sell")

FEATURES = ("reports", "dashboards", "alerts", "api", "sso", "workflows", "analytics", "integrations")
FEATURE_POPULARITY = np.array([3.0, 3.0, 1.5, 1.0, 0.8, 1.2, 1.0, 1.0])
EVENT_TYPES = ("login", "feature_used", "export", "api_call")
EVENT_TYPE_SHARE = np.array([0.30, 0.50, 0.10, 0.10])


class Page(NamedTuple):
    url: str
    category: str
    product: int | None = None  # CATALOGUE index for pricing and product pages


PAGE_CATEGORIES = ("pricing", "product", "docs", "whitepaper", "blog")
PAGE_CATEGORY_SHARE = (0.08, 0.20, 0.32, 0.08, 0.32)
PAGES: tuple[Page, ...] = (
    *(Page(f"{SITE}/pricing/{plan}", "pricing", i) for i, plan in enumerate(PLANS)),
    *(Page(f"{SITE}/products/{p.sku.lower()}", "product", i) for i, p in enumerate(CATALOGUE) if p.kind != "plan"),
    *(Page(f"{SITE}/docs/{feature}", "docs") for feature in FEATURES),
    *(
        Page(f"{SITE}/whitepapers/{slug}", "whitepaper")
        for slug in ("customer-success-playbook", "renewal-forecasting-guide", "security-overview", "roi-guide")
    ),
    *(
        Page(f"{SITE}/blog/{slug}", "blog")
        for slug in (
            "release-notes",
            "dashboard-tips",
            "automating-reports",
            "sso-rollout",
            "api-best-practices",
            "customer-story-manufacturing",
            "customer-story-retail",
            "year-in-review",
        )
    ),
)
# PAGES is grouped by category in PAGE_CATEGORIES order: each category is a slice.
PAGE_CATEGORY = np.array([PAGE_CATEGORIES.index(p.category) for p in PAGES])
PAGE_FIRST = np.searchsorted(PAGE_CATEGORY, np.arange(len(PAGE_CATEGORIES)))
PAGE_COUNT = np.bincount(PAGE_CATEGORY)
# Pages a buyer with budget reads: pricing of the larger plans and high-price products.
HIGH_PRICE_USD = 12_000


def _high_price_pages(category: str) -> np.ndarray:
    """Indexes into PAGES of a category's pages whose product lists at HIGH_PRICE_USD or more."""
    return np.array(
        [
            i
            for i, p in enumerate(PAGES)
            if p.category == category and CATALOGUE[p.product].list_price_usd >= HIGH_PRICE_USD
        ]
    )


HIGH_PRICE_PRICING_PAGES = _high_price_pages("pricing")
HIGH_PRICE_PRODUCT_PAGES = _high_price_pages("product")

CHANNELS = ("email", "chat", "phone", "web")
CHANNEL_SHARE = (0.40, 0.25, 0.10, 0.25)
TICKET_CATEGORIES = ("how_to", "bug", "billing", "access", "integration", "feature_request")
TICKET_CATEGORY_SHARE = (0.35, 0.25, 0.08, 0.12, 0.12, 0.08)

TOPICS = ("onboarding", "admin_basics", "reporting", "dashboards", "api_integration", "workflows", "advanced_analytics")

# Survey comments by tone (detractor, passive, promoter, training) and language.
COMMENTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("detractor", "en"): (
        "Reports are far too slow to load.",
        'The "export" button keeps timing out, and support has not replied yet.',
        "Too expensive for what we actually use.",
        "Onboarding was confusing; half the team still does not log in.",
    ),
    ("detractor", "ja"): (
        "レポートの表示が遅く、業務に支障が出ています。",
        "サポートからの返信が遅いです。",
        "価格に見合った価値を感じられません。",
        "操作が分かりにくく、社内で定着していません。",
    ),
    ("passive", "en"): (
        "Does the job, but the UI could be simpler.",
        "Good overall; SSO setup took a while.",
    ),
    ("passive", "ja"): (
        "概ね満足していますが、もう少し使いやすくしてほしいです。",
        "機能は十分ですが、料金が少し高いと感じます。",
    ),
    ("promoter", "en"): (
        "Our team relies on the dashboards every day.",
        "Great support, quick answers!",
    ),
    ("promoter", "ja"): (
        "ダッシュボードが便利で、毎日使っています。",
        "サポートの対応がとても丁寧です。",
    ),
    ("training", "en"): ("Very practical session.", "A bit fast, but the examples helped."),
    ("training", "ja"): ("分かりやすい説明でした。", "実践的な内容で役に立ちました。"),
}
TONES = ("detractor", "passive", "promoter", "training")

JP_COMPANY_STEMS = (
    ("さくら", "sakura"), ("富士", "fuji"), ("東邦", "toho"), ("大和", "yamato"), ("みらい", "mirai"),
    ("青空", "aozora"), ("北斗", "hokuto"), ("光", "hikari"), ("日の出", "hinode"), ("丸和", "maruwa"),
)  # fmt: skip
JP_COMPANY_KINDS = (
    ("テクノロジー", "technology"), ("商事", "shoji"), ("製作所", "seisakusho"), ("システムズ", "systems"),
    ("物流", "logistics"), ("ホールディングス", "holdings"), ("電機", "denki"), ("フーズ", "foods"),
)  # fmt: skip
EN_COMPANY_STEMS = (
    "Northwind", "Blue River", "Acme", "Summit", "Evergreen", "Redwood",
    "Silverline", "Brightpath", "Harbor", "Crescent", "Pioneer", "Atlas",
)  # fmt: skip
EN_COMPANY_KINDS = ("Systems", "Labs", "Holdings", "Analytics", "Logistics", "Retail Group", "Health", "Partners")
LEGAL_FORM = {"APAC": " Pte. Ltd.", "NA": ", Inc.", "EU": " GmbH"}
JP_FAMILY_NAMES = (
    ("山田", "yamada"), ("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"),
    ("田中", "tanaka"), ("伊藤", "ito"), ("渡辺", "watanabe"), ("中村", "nakamura"),
)  # fmt: skip
JP_GIVEN_NAMES = (
    ("太郎", "taro"), ("花子", "hanako"), ("健", "ken"), ("美咲", "misaki"),
    ("翔", "sho"), ("陽子", "yoko"), ("大輔", "daisuke"), ("結衣", "yui"),
)  # fmt: skip
EN_FIRST_NAMES = ("Emily", "James", "Olivia", "Liam", "Sophia", "Noah", "Mia", "Lucas", "Chloe", "Ethan")
EN_LAST_NAMES = ("Smith", "Clark", "Nguyen", "Garcia", "Schmidt", "Brown", "Taylor", "Lee", "Martin", "Walker")
ROLES = ("decision_maker", "admin", "user")
ROLE_SHARE = (0.15, 0.30, 0.55)  # for contacts after the first, who is always a decision maker

# Id prefix and digits of every generated id.
ID_FORMATS: dict[str, tuple[str, int]] = {
    "contact": ("CON", 7),
    "contract": ("CTR", 7),
    "order": ("ORD", 8),
    "event": ("EV", 10),
    "ticket": ("TKT", 7),
    "response": ("RSP", 8),
    "training": ("TRN", 7),
    "invoice": ("INV", 8),
}


def generate(
    out_dir: Path,
    accounts: int,
    seed: int,
    as_of: date,
    fmt: str = "csv",
    progress: Callable[[str, int], None] | None = None,
    not_after: datetime | None = None,
) -> dict[str, int]:
    """Write every landing file of the contract into out_dir; return rows written per entity.

    not_after: no timestamp later than this instant (the time of generation,
    for data as of today); the start of as_of at the earliest.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if accounts < 1:
        raise ValueError(f"accounts must be at least 1, got {accounts}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(
        seed=seed,
        accounts=accounts,
        as_of_day=(as_of - EPOCH).days,
        not_after=int(not_after.timestamp()) if not_after is not None else None,
    )
    with _LandingWriter(out_dir, fmt, progress) as writer:
        for chunk_index, first in enumerate(range(1, accounts + 1, CHUNK_ACCOUNTS)):
            _write_chunk(run, writer, chunk_index, first, min(CHUNK_ACCOUNTS, accounts + 1 - first))
    return writer.rows


def _write_chunk(run: _Run, writer: _LandingWriter, chunk_index: int, first: int, size: int) -> None:
    """Generate one chunk of accounts and append its rows to every file.

    Entities that depend on another (orders on contracts, CSAT on tickets, ...)
    get what they need passed along; the large usage table is written as soon
    as it exists so at most one is held in memory.
    """

    def rng(entity: str) -> np.random.Generator:
        key = (chunk_index, list(ENTITIES).index(entity))
        return np.random.default_rng(np.random.SeedSequence(run.seed, spawn_key=key))

    chunk = _plan_chunk(run, first, size, rng("accounts"))
    writer.write("accounts", _accounts(run, chunk))
    table, contacts = _contacts(run, chunk, rng("contacts"))
    writer.write("contacts", table)
    table, contracts = _contracts(run, chunk, rng("contracts"))
    writer.write("contracts", table)
    table, orders = _orders(run, chunk, contracts, rng("orders"))
    writer.write("orders", table)
    writer.write("usage_events", _usage_events(run, chunk, rng("usage_events")))
    writer.write("web_visits", _web_visits(run, chunk, contacts, rng("web_visits")))
    writer.write("email_events", _email_events(run, chunk, contacts, rng("email_events")))
    table, tickets = _support_tickets(run, chunk, contacts, rng("support_tickets"))
    writer.write("support_tickets", table)
    table, sessions = _trainings(run, chunk, contacts, rng("trainings"))
    writer.write("trainings", table)
    responses = _survey_responses(run, chunk, contacts, tickets, sessions, rng("survey_responses"))
    writer.write("survey_responses", responses)
    writer.write("invoices", _invoices(run, chunk, orders, rng("invoices")))


# --------------------------------------------------------------------------- run and chunk state


@dataclass
class _Run:
    """Settings shared by every chunk, plus the id counters that continue across chunks."""

    seed: int
    accounts: int
    as_of_day: int  # days since 1970-01-01
    not_after: int | None = None  # UTC seconds since 1970-01-01

    def __post_init__(self) -> None:
        self.next_serial = dict.fromkeys(ID_FORMATS, 1)
        self.campaigns = _campaigns(self)

    @property
    def first_day(self) -> int:
        """First day of the activity history."""
        return self.as_of_day - HISTORY_DAYS + 1

    def new_ids(self, kind: str, count: int) -> pa.Array:
        """The next `count` ids of a kind, e.g. ORD00000042."""
        prefix, digits = ID_FORMATS[kind]
        start = self.next_serial[kind]
        self.next_serial[kind] += count
        return _ids(prefix, np.arange(start, start + count), digits)


@dataclass
class _Chunk:
    """The accounts of one chunk: everything the entity generators need to agree on.

    Arrays are indexed by the account's position in the chunk; generators refer
    to an account by that position (`a` arrays, one entry per row).
    """

    number: np.ndarray  # global account number, 1-based
    ids: pa.Array  # account_id
    names: pa.Array  # account_name
    domains: pa.Array  # e-mail domain of the account's contacts
    region: np.ndarray
    offset: np.ndarray  # index into OFFSETS
    rate: np.ndarray  # account currency units per USD
    plan: np.ndarray
    arr_cents: np.ndarray  # ARR of the latest contract, in cents of the account currency
    fiscal_month: np.ndarray  # 1-12, 0 when unknown
    industry: np.ndarray  # index into INDUSTRIES, -1 when unknown
    csm: np.ndarray  # number of the owning CSM
    created_day: np.ndarray
    first_start: np.ndarray  # start_date of the first contract
    end_day: np.ndarray  # end_date of the latest contract
    n_contracts: np.ndarray
    churned: np.ndarray
    start_day: np.ndarray  # first day with activity in the history window
    stop_day: np.ndarray  # last day with activity (churn date or as_of)
    limit: np.ndarray  # latest local timestamp: end of as_of locally, never past its end in UTC
    cohort: dict[str, np.ndarray]

    @property
    def size(self) -> int:
        return len(self.number)

    @property
    def is_jp(self) -> np.ndarray:
        return self.region == REGIONS.index("JP")


@dataclass
class _Contacts:
    """Contacts of a chunk, so other entities can name a real person of the right account."""

    first: np.ndarray  # per account: index of its first contact
    count: np.ndarray  # per account
    ids: pa.Array  # per contact
    unsubscribed: np.ndarray  # per contact


@dataclass
class _ContractRows:
    account: np.ndarray
    seq: np.ndarray  # 0 for the account's first contract
    start_day: np.ndarray
    arr_cents: np.ndarray


@dataclass
class _OrderRows:
    account: np.ndarray
    day: np.ndarray
    cents: np.ndarray


@dataclass
class _ResolvedTickets:
    account: np.ndarray
    resolved: np.ndarray  # local timestamp
    contact: np.ndarray  # contact index, -1 when unknown


@dataclass
class _Attendance:
    account: np.ndarray
    contact: np.ndarray
    day: np.ndarray
    training_ids: pa.Array


@dataclass
class _Campaigns:
    """The marketing calendar: every account's e-mails come from these sends."""

    day: np.ndarray  # send day, ascending
    names: pa.Array
    skus: pa.Array  # product a cross-sell campaign promotes, else null
    links: pa.Array  # where a click leads
    cross_sell: np.ndarray


def _campaigns(run: _Run) -> _Campaigns:
    """Monthly newsletters and product updates, and a cross-sell send every two weeks (the latest 4 days ago)."""
    sends: list[tuple[int, str, str | None, str]] = []
    this_month = _month_start(run.as_of_day)
    for back in range(14):
        start = int(_add_months(this_month, -back))
        tag = _day_label(start)[:7].replace("-", "_")
        for offset, name, page in ((4, "newsletter", "blog/release-notes"), (17, "product_update", "docs/reports")):
            sends.append((start + offset, f"{name}_{tag}", None, f"{SITE}/{page}?utm_campaign={name}_{tag}"))
    for back in range(HISTORY_DAYS // 14 + 1):
        day = run.as_of_day - 4 - 14 * back
        product = CATALOGUE[CROSS_SELL_PRODUCTS[back % len(CROSS_SELL_PRODUCTS)]]
        name = f"cross_sell_{product.feature}_{_day_label(day).replace('-', '')}"
        link = f"{SITE}/products/{product.sku.lower()}?utm_campaign={name}"
        sends.append((day, name, product.sku, link))
    sends = sorted((s for s in sends if run.first_day <= s[0] <= run.as_of_day), key=lambda s: (s[0], s[1]))
    return _Campaigns(
        day=np.array([s[0] for s in sends]),
        names=pa.array([s[1] for s in sends], pa.string()),
        skus=pa.array([s[2] for s in sends], pa.string()),
        links=pa.array([s[3] for s in sends], pa.string()),
        cross_sell=np.array([s[2] is not None for s in sends]),
    )


def _plan_chunk(run: _Run, first: int, size: int, rng: np.random.Generator) -> _Chunk:
    """Draw who each account is (region, plan, contract situation, cohorts) before any row is written."""
    n = size
    every = np.arange(n)
    number = np.arange(first, first + n)
    region = rng.choice(len(REGIONS), n, p=REGION_SHARE)
    is_jp = region == REGIONS.index("JP")
    offset = _choose(rng, REGION_OFFSET_SHARE[region], every)
    plan = rng.choice(len(PLANS), n, p=PLAN_SHARE)
    rate = np.where(is_jp, JPY_PER_USD, 1)
    arr_usd = PLAN_ARR_USD[plan] * rng.lognormal(0.0, PLAN_ARR_SIGMA[plan])
    arr_cents = _to_cents(arr_usd * rate, 10_000)  # ARR in whole hundreds

    # The latest contract's end_date decides the renewal window; churned and
    # overdue accounts ended in the past. States get exact shares of the chunk
    # (the first takes the rest), so small runs have every window too.
    state = np.zeros(n, np.int64)
    shuffled, taken = rng.permutation(n), 0
    for index, (_, share) in enumerate(CONTRACT_STATES[1:], start=1):
        count = round(share * n)
        state[shuffled[taken : taken + count]] = index
        taken += count
    states = [name for name, _ in CONTRACT_STATES]
    end_day = np.select(
        [state == states.index(s) for s in ("churned", "overdue", "ends_in_2m", "ends_in_4m")],
        [
            run.as_of_day - rng.integers(1, 330, n),
            run.as_of_day - rng.integers(1, 46, n),
            np.full(n, _add_months(run.as_of_day, 2)),
            np.full(n, _add_months(run.as_of_day, 4)),
        ],
        default=run.as_of_day + rng.integers(0, 365, n),
    )
    n_contracts = rng.choice(np.arange(1, 7), n, p=[0.2, 0.2, 0.2, 0.15, 0.15, 0.1])
    first_start = _add_months(end_day, -12 * n_contracts) + 1
    created_day = first_start - rng.integers(0, 60, n)
    churned = state == states.index("churned")
    start_day = np.maximum(created_day, run.first_day)
    stop_day = np.where(churned, end_day, run.as_of_day)
    limit = run.as_of_day * DAY + DAY - 1 + np.minimum(0, OFFSET_SECONDS[offset])
    if run.not_after is not None:
        limit = np.maximum(run.as_of_day * DAY, np.minimum(limit, run.not_after + OFFSET_SECONDS[offset]))

    active = ~churned
    history = run.as_of_day - start_day  # days of activity before as_of
    fiscal_month = _choose(rng, FISCAL_MONTH_SHARE[is_jp.astype(int)], every)

    def pick(name: str, eligible: np.ndarray) -> np.ndarray:
        """Exactly the cohort's share of the eligible accounts, so even a small run holds every cohort."""
        candidates = np.flatnonzero(eligible)
        members = np.zeros(n, bool)
        members[rng.choice(candidates, round(COHORT_SHARE[name] * len(candidates)), replace=False)] = True
        return members

    cohort: dict[str, np.ndarray] = {}
    cohort["usage_decline"] = pick("usage_decline", active & (history >= 90))
    cohort["single_feature"] = pick("single_feature", active & (history >= 90))
    cohort["dormant"] = pick("dormant", ~cohort["usage_decline"] & ~cohort["single_feature"])
    cohort["support_surge"] = pick("support_surge", active & (history >= 70))
    cohort["pricing_interest"] = pick("pricing_interest", active & (history >= 14))
    cohort["cross_sell_clicks"] = pick("cross_sell_clicks", active & (history >= 14))
    cohort["new_detractor"] = pick("new_detractor", active & (history >= 3))
    cohort["recent_training"] = pick("recent_training", active & (history >= 8))
    cohort["late_payer"] = pick("late_payer", np.ones(n, bool))
    cohort["fiscal_year_buyer"] = pick("fiscal_year_buyer", fiscal_month > 0)
    cohort["same_day_orders"] = pick("same_day_orders", np.ones(n, bool))
    cohort["growing_buyer"] = pick("growing_buyer", np.ones(n, bool))
    cohort["shrinking_buyer"] = pick("shrinking_buyer", ~cohort["growing_buyer"])

    industry = np.where(rng.random(n) < 0.03, -1, rng.integers(0, len(INDUSTRIES), n))
    csm = rng.integers(1, _csm_count(run) + 1, n)
    names, domains = _company_names(rng, region, number)
    return _Chunk(
        number=number,
        ids=_ids("ACC", number, max(6, len(str(run.accounts)))),
        names=names,
        domains=domains,
        region=region,
        offset=offset,
        rate=rate,
        plan=plan,
        arr_cents=arr_cents,
        fiscal_month=fiscal_month,
        industry=industry,
        csm=csm,
        created_day=created_day,
        first_start=first_start,
        end_day=end_day,
        n_contracts=n_contracts,
        churned=churned,
        start_day=start_day,
        stop_day=stop_day,
        limit=limit,
        cohort=cohort,
    )


def _company_names(rng: np.random.Generator, region: np.ndarray, number: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Japanese names (株式会社…) for JP accounts, English ones elsewhere, and a matching e-mail domain."""
    n = len(region)
    stem, kind = rng.integers(0, 1 << 16, (2, n))  # reduced modulo the length of each name list
    prefixed = rng.random(n) < 0.7  # 株式会社 before the name, else after it
    names, domains = [], []
    for r, s, k, p, num in zip(region, stem, kind, prefixed, number, strict=True):
        if REGIONS[r] == "JP":
            s_ja, s_en = JP_COMPANY_STEMS[s % len(JP_COMPANY_STEMS)]
            k_ja, k_en = JP_COMPANY_KINDS[k % len(JP_COMPANY_KINDS)]
            names.append(f"株式会社{s_ja}{k_ja}" if p else f"{s_ja}{k_ja}株式会社")
            slug = f"{s_en}-{k_en}"
        else:
            s_en, k_en = EN_COMPANY_STEMS[s % len(EN_COMPANY_STEMS)], EN_COMPANY_KINDS[k % len(EN_COMPANY_KINDS)]
            names.append(f"{s_en} {k_en}{LEGAL_FORM[REGIONS[r]]}")
            slug = f"{s_en}-{k_en}".lower().replace(" ", "-")
        domains.append(f"{slug}-{num}.example")
    return pa.array(names, pa.string()), pa.array(domains, pa.string())


# --------------------------------------------------------------------------- entities


def _csm_count(run: _Run) -> int:
    """One CSM per ACCOUNTS_PER_CSM accounts, at least one."""
    return -(-run.accounts // ACCOUNTS_PER_CSM)


def _accounts(run: _Run, chunk: _Chunk) -> pa.Table:
    """One row per planned account; owner_email names the CSM."""
    return _table(
        "accounts",
        account_id=chunk.ids,
        account_name=chunk.names,
        owner_email=pc.binary_join_element_wise(
            "csm", _zero_pad(chunk.csm, max(2, len(str(_csm_count(run))))), "@example.com", ""
        ),
        created_date=_dates(chunk.created_day),
        industry=_pick(INDUSTRIES, chunk.industry),
        plan=_pick(PLANS, chunk.plan),
        region=_pick(REGIONS, chunk.region),
        fiscal_year_end_month=_ints(chunk.fiscal_month, valid=chunk.fiscal_month > 0),
    )


def _contacts(run: _Run, chunk: _Chunk, rng: np.random.Generator) -> tuple[pa.Table, _Contacts]:
    """2-6 people per account; the first is always a decision maker so every account has one."""
    count = rng.integers(2, 7, chunk.size)
    a = np.repeat(np.arange(chunk.size), count)
    first = np.cumsum(count) - count
    seq = np.arange(len(a)) - first[a]  # 0 for the account's first contact
    m = len(a)
    role = np.where(seq == 0, 0, rng.choice(len(ROLES), m, p=ROLE_SHARE))
    unsubscribed = rng.random(m) < 0.03

    is_jp = chunk.is_jp[a]
    family, given = rng.integers(0, len(JP_FAMILY_NAMES), m), rng.integers(0, len(JP_GIVEN_NAMES), m)
    last, firstname = rng.integers(0, len(EN_LAST_NAMES), m), rng.integers(0, len(EN_FIRST_NAMES), m)
    ja_name = pc.binary_join_element_wise(
        _pick([f for f, _ in JP_FAMILY_NAMES], family), _pick([g for g, _ in JP_GIVEN_NAMES], given), " "
    )
    ja_local = pc.binary_join_element_wise(
        _pick([g for _, g in JP_GIVEN_NAMES], given), _pick([f for _, f in JP_FAMILY_NAMES], family), "."
    )
    en_name = pc.binary_join_element_wise(_pick(EN_FIRST_NAMES, firstname), _pick(EN_LAST_NAMES, last), " ")
    en_local = pc.utf8_lower(
        pc.binary_join_element_wise(_pick(EN_FIRST_NAMES, firstname), _pick(EN_LAST_NAMES, last), ".")
    )
    name = pc.if_else(is_jp, ja_name, en_name)
    local = pc.if_else(is_jp, ja_local, en_local)
    ids = run.new_ids("contact", m)
    table = _table(
        "contacts",
        contact_id=ids,
        account_id=chunk.ids.take(a),
        email=pc.binary_join_element_wise(local, ".", _zero_pad(seq + 1, 1), "@", chunk.domains.take(a), ""),
        contact_name=_null_where(name, rng.random(m) < 0.02),
        role=_pick(ROLES, role),
        is_unsubscribed=_bools(unsubscribed),
    )
    return table, _Contacts(first=first, count=count, ids=ids, unsubscribed=unsubscribed)


def _contracts(run: _Run, chunk: _Chunk, rng: np.random.Generator) -> tuple[pa.Table, _ContractRows]:
    """Back-to-back annual contracts ending at the account's latest end_date; older ones are `renewed`."""
    a = np.repeat(np.arange(chunk.size), chunk.n_contracts)
    seq = np.arange(len(a)) - (np.cumsum(chunk.n_contracts) - chunk.n_contracts)[a]
    later = chunk.n_contracts[a] - 1 - seq  # contracts that followed this one
    end = _add_months(chunk.end_day[a], -12 * later)
    start = _add_months(chunk.end_day[a], -12 * (later + 1)) + 1
    # Half the accounts renew flat, the others grow a little at each renewal.
    growth = np.where(rng.random(chunk.size) < 0.5, 1.0, 1 + np.abs(rng.normal(0.05, 0.08, chunk.size)))
    arr_cents = _to_cents(chunk.arr_cents[a] / 100 / growth[a] ** later, 10_000)
    status = np.where(later > 0, "renewed", np.where(chunk.churned[a], "churned", "active"))
    auto_renew = rng.random(chunk.size) < 0.65
    table = _table(
        "contracts",
        contract_id=run.new_ids("contract", len(a)),
        account_id=chunk.ids.take(a),
        plan=_pick(PLANS, chunk.plan[a]),
        start_date=_dates(start),
        end_date=_dates(end),
        arr=_money(arr_cents),
        status=pa.array(status, pa.string()),
        auto_renew=_bools(auto_renew[a]),
        currency=pa.array(np.where(chunk.is_jp[a], "JPY", "USD"), pa.string()),
    )
    return table, _ContractRows(account=a, seq=seq, start_day=start, arr_cents=arr_cents)


def _orders(
    run: _Run, chunk: _Chunk, contracts: _ContractRows, rng: np.random.Generator
) -> tuple[pa.Table, _OrderRows]:
    """A `new` or `renewal` order per contract, plus upsell and cross-sell orders.

    Fiscal-year buyers place their extra orders in the fiscal year-end month
    or the month before; growing (shrinking) buyers' last three orders
    strictly increase (decrease); some accounts order twice on one day.
    """
    # Contract orders are placed up to three weeks before the contract starts.
    ca = contracts.account
    c_day = np.maximum(contracts.start_day - rng.integers(0, 21, len(ca)), chunk.created_day[ca])
    c_type = np.where(contracts.seq == 0, ORDER_TYPES.index("new"), ORDER_TYPES.index("renewal"))

    # Upsell and cross-sell orders any day after the first contract started, more for bigger plans.
    life = chunk.stop_day - chunk.first_start
    extra = rng.poisson(EXTRA_ORDERS_PER_YEAR[chunk.plan] * life / 365)
    trend_buyer = chunk.cohort["growing_buyer"] | chunk.cohort["shrinking_buyer"]
    extra = np.where(trend_buyer, np.maximum(extra, 3), extra)
    extra = np.where(chunk.cohort["fiscal_year_buyer"] | chunk.cohort["same_day_orders"], np.maximum(extra, 2), extra)
    ea = np.repeat(np.arange(chunk.size), extra)
    earliest = chunk.first_start[ea] + 1
    e_day = earliest + (rng.random(len(ea)) * life[ea]).astype(np.int64)
    fiscal = chunk.cohort["fiscal_year_buyer"][ea]
    target = np.where(rng.random(len(ea)) < 0.6, chunk.fiscal_month[ea], (chunk.fiscal_month[ea] - 2) % 12 + 1)
    e_day = np.where(fiscal, _back_to_month(e_day, target, earliest), e_day)
    kept = e_day <= chunk.stop_day[ea]
    ea, e_day = ea[kept], e_day[kept]
    # A second order on the same day as the account's first extra order.
    first_extra = np.flatnonzero(np.r_[True, ea[1:] != ea[:-1]] & chunk.cohort["same_day_orders"][ea])
    ea, e_day = np.r_[ea, ea[first_extra]], np.r_[e_day, e_day[first_extra]]
    e_type = np.where(rng.random(len(ea)) < 0.55, ORDER_TYPES.index("upsell"), ORDER_TYPES.index("cross_sell"))
    e_product = np.where(
        e_type == ORDER_TYPES.index("upsell"),
        rng.choice(UPSELL_PRODUCTS, len(ea)),
        rng.choice(CROSS_SELL_PRODUCTS, len(ea)),
    )
    price_usd = np.array([p.list_price_usd for p in CATALOGUE])
    e_cents = _to_cents(price_usd[e_product] * chunk.rate[ea] * rng.lognormal(0, 0.3, len(ea)), _cent_step(chunk, ea))

    a = np.r_[ca, ea]
    day = np.r_[c_day, e_day]
    lt = _local_times(run, chunk, a, day, _office_seconds(rng, len(a)))
    kind = np.r_[c_type, e_type]
    product = np.r_[PLAN_PRODUCT[chunk.plan[ca]], e_product]
    cents = np.r_[contracts.arr_cents, e_cents]
    order = np.lexsort((lt, a))
    a, lt, kind, product, cents = a[order], lt[order], kind[order], product[order], cents[order]
    cents = _trend_last_three(rng, chunk, a, cents)
    table = _table(
        "orders",
        order_id=run.new_ids("order", len(a)),
        account_id=chunk.ids.take(a),
        ordered_at=_timestamps(chunk, a, lt),
        amount=_money(cents),
        product_sku=_pick([p.sku for p in CATALOGUE], product),
        product_name=_pick([p.name for p in CATALOGUE], product),
        order_type=_pick(ORDER_TYPES, kind),
    )
    return table, _OrderRows(account=a, day=lt // DAY, cents=cents)


def _back_to_month(day: np.ndarray, month: np.ndarray, earliest: np.ndarray) -> np.ndarray:
    """Move each day back to the latest date in `month` (1-12), a year later if that is before `earliest`."""
    moved = _add_months(day, -((_month_of(day) - month) % 12))
    return np.where(moved < earliest, _add_months(moved, 12), moved)


def _trend_last_three(rng: np.random.Generator, chunk: _Chunk, a: np.ndarray, cents: np.ndarray) -> np.ndarray:
    """Rewrite the last three order amounts of growing/shrinking buyers (rows sorted by account and time).

    The first of the three sets the level; a renewal among them may then differ
    from its contract's ARR, as ramps and discounts do in real billing.
    """
    last = np.flatnonzero(np.r_[a[1:] != a[:-1], True])
    growing, shrinking = chunk.cohort["growing_buyer"][a[last]], chunk.cohort["shrinking_buyer"][a[last]]
    enough = np.bincount(a, minlength=chunk.size)[a[last]] >= 3
    last, growing = last[(growing | shrinking) & enough], growing[(growing | shrinking) & enough]
    step = rng.uniform(1.1, 1.5, (2, len(last)))
    step = np.where(growing, step, 1 / step)
    base, cent_step = cents[last - 2] / 100, _cent_step(chunk, a[last])
    cents = cents.copy()
    cents[last - 1] = _to_cents(base * step[0], cent_step)
    cents[last] = _to_cents(base * step[0] * step[1], cent_step)
    return cents


def _usage_events(run: _Run, chunk: _Chunk, rng: np.random.Generator) -> pa.Table:
    """Product usage: a long-tailed volume per account spread over active days, quieter at weekends."""
    n = chunk.size
    days = np.arange(run.first_day, run.as_of_day + 1)
    weekday_weight = np.where((days + 3) % 7 >= 5, 0.25, 1.0)  # 1970-01-01 was a Thursday
    weight = ((days >= chunk.start_day[:, None]) & (days <= chunk.stop_day[:, None])) * weekday_weight
    weight = weight * np.exp(rng.normal(0, 0.3, (n, 1)) * (days - run.as_of_day) / 365)  # slow drift
    decline = np.where(chunk.cohort["usage_decline"], rng.uniform(0.15, 0.5, n), 1.0)
    weight[:, days > run.as_of_day - 30] *= decline[:, None]

    mu = np.log(USAGE_EVENTS_PER_ACCOUNT) - 1.1**2 / 2  # lognormal with that mean
    volume = rng.lognormal(mu, 1.1, n)
    volume = np.where(chunk.cohort["usage_decline"] | chunk.cohort["single_feature"], np.maximum(volume, 300), volume)
    volume = np.where(chunk.cohort["dormant"], rng.uniform(0, 10, n), volume)
    counts = rng.poisson(volume[:, None] * weight / weekday_weight.sum())

    # One row per event, sorted by account and local time without an argsort.
    cells = np.repeat(np.arange(counts.size), counts.ravel())
    key = np.sort(cells * DAY + _office_seconds(rng, len(cells)))
    cells, sec = np.divmod(key, DAY)
    a, day = np.divmod(cells, len(days))
    lt = _local_times(run, chunk, a, day + run.first_day, sec)

    # Features: each account adopts a few (popular ones more often); single-feature accounts one.
    adopted_count = np.where(chunk.cohort["single_feature"], 1, rng.integers(2, len(FEATURES) + 1, n))
    priority = rng.random((n, len(FEATURES))) ** (1 / FEATURE_POPULARITY)  # weighted sampling keys
    rank = np.argsort(np.argsort(-priority, axis=1), axis=1)
    feature_share = rng.gamma(2.0, 1.0, (n, len(FEATURES))) * FEATURE_POPULARITY * (rank < adopted_count[:, None])
    type_share = np.tile(EVENT_TYPE_SHARE, (n, 1))
    type_share[feature_share[:, FEATURES.index("api")] > 0, EVENT_TYPES.index("api_call")] *= 2.5
    event_type = _choose(rng, type_share, a)
    used = event_type == EVENT_TYPES.index("feature_used")
    feature = np.full(len(a), -1)
    feature[used] = _choose(rng, feature_share, a[used])

    # Users: more for busier accounts, a few power users do most of the work.
    users = np.clip(np.sqrt(volume) * 1.2, 1, 400).astype(np.int64)
    user_first = np.cumsum(users) - users
    user_account = np.repeat(chunk.number, users)
    user_seq = np.arange(users.sum()) - np.repeat(user_first, users) + 1
    user_ids = pc.binary_join_element_wise("U", _zero_pad(user_account, 6), "-", _zero_pad(user_seq, 3), "")
    user = user_first[a] + (users[a] * rng.random(len(a)) ** 2).astype(np.int64)
    return _table(
        "usage_events",
        account_id=chunk.ids.take(a),
        occurred_at=_timestamps(chunk, a, lt),
        event_type=_pick(EVENT_TYPES, event_type),
        event_id=run.new_ids("event", len(a)),
        user_id=user_ids.take(user),
        feature=_pick(FEATURES, feature),
    )


def _web_visits(run: _Run, chunk: _Chunk, contacts: _Contacts, rng: np.random.Generator) -> pa.Table:
    """Site visits; the pricing-interest cohort reads pricing and high-price product pages in the last 2 weeks."""
    span = chunk.stop_day - chunk.start_day + 1
    mean = rng.lognormal(np.log(WEB_VISITS_PER_ACCOUNT) - 0.9**2 / 2, 0.9, chunk.size)
    a = np.repeat(np.arange(chunk.size), rng.poisson(mean * span / HISTORY_DAYS))
    day = chunk.start_day[a] + (rng.random(len(a)) * span[a]).astype(np.int64)
    category = rng.choice(len(PAGE_CATEGORIES), len(a), p=PAGE_CATEGORY_SHARE)
    page = PAGE_FIRST[category] + (rng.random(len(a)) * PAGE_COUNT[category]).astype(np.int64)

    interested = np.flatnonzero(chunk.cohort["pricing_interest"])
    pricing_visits = np.repeat(interested, rng.integers(3, 6, len(interested)))
    product_visits = np.repeat(interested, rng.integers(0, 3, len(interested)))
    a = np.r_[a, pricing_visits, product_visits]
    day = np.r_[day, run.as_of_day - rng.integers(0, 13, len(pricing_visits) + len(product_visits))]
    page = np.r_[
        page,
        rng.choice(HIGH_PRICE_PRICING_PAGES, len(pricing_visits)),
        rng.choice(HIGH_PRICE_PRODUCT_PAGES, len(product_visits)),
    ]

    order, lt = _distinct_times(a, _local_times(run, chunk, a, day, _office_seconds(rng, len(a))))
    a, page = a[order], page[order]
    product = np.array([-1 if p.product is None else p.product for p in PAGES])[page]
    price_usd = np.array([p.list_price_usd for p in CATALOGUE])[np.maximum(product, 0)]
    contact = _pick_contact(rng, contacts, a, known_share=0.7)
    return _table(
        "web_visits",
        account_id=chunk.ids.take(a),
        visited_at=_timestamps(chunk, a, lt),
        page_url=_pick([p.url for p in PAGES], page),
        contact_id=_contact_ids(contacts, contact),
        page_category=_pick(PAGE_CATEGORIES, PAGE_CATEGORY[page]),
        product_sku=_pick([p.sku for p in CATALOGUE], product),
        list_price=_money(price_usd * chunk.rate[a] * 100, valid=product >= 0),
    )


def _email_events(run: _Run, chunk: _Chunk, contacts: _Contacts, rng: np.random.Generator) -> pa.Table:
    """Campaign sends to subscribed contacts, with opens and clicks; the cross-sell cohort clicks recently."""
    campaigns = run.campaigns
    span = chunk.stop_day - chunk.start_day + 1
    a = np.repeat(np.arange(chunk.size), rng.poisson(EMAILS_PER_ACCOUNT_YEAR * span / 365))
    lo = np.searchsorted(campaigns.day, chunk.start_day, "left")[a]
    hi = np.searchsorted(campaigns.day, chunk.stop_day, "right")[a]
    campaign = lo + (rng.random(len(a)) * (hi - lo)).astype(np.int64)
    a, campaign = a[hi > lo], campaign[hi > lo]  # accounts with no send while a customer get none

    # The cross-sell cohort got the latest cross-sell send (4 days ago) and clicked it more than once.
    clickers = np.flatnonzero(chunk.cohort["cross_sell_clicks"])
    forced = np.r_[np.zeros(len(a), bool), np.ones(len(clickers), bool)]
    a = np.r_[a, clickers]
    campaign = np.r_[campaign, np.full(len(clickers), np.flatnonzero(campaigns.cross_sell)[-1])]
    contact = _pick_contact(rng, contacts, a, known_share=1.0, subscribed_only=True)
    sent = contact >= 0
    a, campaign, forced, contact = a[sent], campaign[sent], forced[sent], contact[sent]
    delivered = _local_times(run, chunk, a, campaigns.day[campaign], 9 * 3600 + rng.integers(0, 3600, len(a)))

    # Opens mostly within hours (never later than 3 days), clicks minutes after the open.
    opened = forced | (rng.random(len(a)) < 0.35)
    open_at = delivered[opened] + np.clip(rng.lognormal(np.log(7200), 1.2, opened.sum()), 30, 3 * DAY).astype(np.int64)
    clicks = np.where(forced[opened], rng.integers(2, 4, opened.sum()), rng.random(opened.sum()) < 0.3)
    opener = np.flatnonzero(opened)
    clicker = np.repeat(opener, clicks)
    click_at = np.repeat(open_at, clicks) + rng.integers(5, 1800, len(clicker))

    row = np.r_[np.arange(len(a)), opener, clicker]  # the delivery each event belongs to
    event = np.r_[np.zeros(len(a), int), np.ones(len(opener), int), np.full(len(clicker), 2)]
    lt = np.r_[delivered, open_at, click_at]
    happened = lt <= chunk.limit[a[row]]
    row, event, lt = row[happened], event[happened], lt[happened]
    order, lt = _distinct_times(a[row], lt)
    row, event = row[order], event[order]
    ra, rc = a[row], campaign[row]
    return _table(
        "email_events",
        account_id=chunk.ids.take(ra),
        occurred_at=_timestamps(chunk, ra, lt),
        event=_pick(("delivered", "open", "click"), event),
        contact_id=_contact_ids(contacts, contact[row]),
        campaign=campaigns.names.take(rc),
        link_url=_null_where(campaigns.links.take(rc), event != 2),
        product_sku=campaigns.skus.take(rc),
    )


def _support_tickets(
    run: _Run, chunk: _Chunk, contacts: _Contacts, rng: np.random.Generator
) -> tuple[pa.Table, _ResolvedTickets]:
    """Tickets at a plan-dependent rate; the surge cohort filed >= 5, and over twice the month before, recently."""
    n = chunk.size
    span = chunk.stop_day - chunk.start_day + 1
    rate = TICKETS_PER_YEAR[chunk.plan] * rng.lognormal(0, 0.5, n)
    a = np.repeat(np.arange(n), rng.poisson(rate * span / 365))
    day = chunk.start_day[a] + (rng.random(len(a)) * span[a]).astype(np.int64)

    # Surge tickets fall 1-24 days ago; they are counted against days 25-64 ago,
    # a window that covers "the previous 30 days" however a mart draws the line.
    before = np.bincount(a[(day >= run.as_of_day - 64) & (day <= run.as_of_day - 25)], minlength=n)
    surging = np.flatnonzero(chunk.cohort["support_surge"])
    surge = np.repeat(surging, np.maximum(5, 2 * before[surging] + 1) + rng.integers(0, 4, len(surging)))
    a = np.r_[a, surge]
    day = np.r_[day, run.as_of_day - rng.integers(1, 25, len(surge))]
    lt = _local_times(run, chunk, a, day, _office_seconds(rng, len(a)))
    order = np.lexsort((lt, a))
    a, lt = a[order], lt[order]

    m = len(a)
    resolved_at = lt + (rng.lognormal(np.log(18), 1.0, m) * 3600).astype(np.int64)
    resolved = (resolved_at <= chunk.limit[a]) & (rng.random(m) >= 0.02)  # a few stay open for good
    status = np.where(
        resolved, np.where(rng.random(m) < 0.6, "closed", "resolved"), np.where(rng.random(m) < 0.5, "open", "pending")
    )
    contact = _pick_contact(rng, contacts, a, known_share=0.9)
    table = _table(
        "support_tickets",
        ticket_id=run.new_ids("ticket", m),
        account_id=chunk.ids.take(a),
        opened_at=_timestamps(chunk, a, lt),
        channel=_pick(CHANNELS, rng.choice(len(CHANNELS), m, p=CHANNEL_SHARE)),
        category=_pick(TICKET_CATEGORIES, rng.choice(len(TICKET_CATEGORIES), m, p=TICKET_CATEGORY_SHARE)),
        status=pa.array(status, pa.string()),
        resolved_at=_null_where(_timestamps(chunk, a, resolved_at), ~resolved),
        contact_id=_contact_ids(contacts, contact),
    )
    return table, _ResolvedTickets(account=a[resolved], resolved=resolved_at[resolved], contact=contact[resolved])


def _trainings(run: _Run, chunk: _Chunk, contacts: _Contacts, rng: np.random.Generator) -> tuple[pa.Table, _Attendance]:
    """Sessions for one or more contacts of an account; the recent-training cohort had one 1-7 days ago."""
    n = chunk.size
    span = np.maximum(0, np.minimum(chunk.stop_day, run.as_of_day - 1) - chunk.start_day + 1)
    sa = np.repeat(np.arange(n), rng.poisson(1.5 * span / 365))
    s_day = chunk.start_day[sa] + (rng.random(len(sa)) * span[sa]).astype(np.int64)
    recent = np.flatnonzero(chunk.cohort["recent_training"])
    sa = np.r_[sa, recent]
    s_day = np.r_[s_day, run.as_of_day - rng.integers(1, 8, len(recent))]
    order = np.lexsort((s_day, sa))
    sa, s_day = sa[order], s_day[order]
    training_ids = run.new_ids("training", len(sa))
    topic = rng.integers(0, len(TOPICS), len(sa))

    # Invite distinct contacts: consecutive ones from a random starting colleague.
    invited = np.minimum(contacts.count[sa], 1 + rng.poisson(1.5, len(sa)))
    session = np.repeat(np.arange(len(sa)), invited)
    seq = np.arange(len(session)) - (np.cumsum(invited) - invited)[session]
    a = sa[session]
    contact = contacts.first[a] + (rng.integers(0, 6, len(sa))[session] + seq) % contacts.count[a]
    attended = (rng.random(len(session)) < 0.8) | ((seq == 0) & (s_day[session] >= run.as_of_day - 7))
    table = _table(
        "trainings",
        training_id=training_ids.take(session),
        account_id=chunk.ids.take(a),
        contact_id=contacts.ids.take(contact),
        session_date=_dates(s_day[session]),
        attended=_bools(attended),
        topic=_pick(TOPICS, topic[session]),
    )
    went = np.flatnonzero(attended)
    return table, _Attendance(
        account=a[went], contact=contact[went], day=s_day[session][went], training_ids=training_ids.take(session[went])
    )


def _survey_responses(
    run: _Run,
    chunk: _Chunk,
    contacts: _Contacts,
    tickets: _ResolvedTickets,
    attendance: _Attendance,
    rng: np.random.Generator,
) -> pa.Table:
    """NPS whose tone follows the account's health, CSAT after resolved tickets, feedback after trainings."""
    n = chunk.size
    unhappy = chunk.cohort["usage_decline"] | chunk.cohort["support_surge"] | chunk.churned

    # NPS: detractor / passive / promoter; the new-detractor cohort answered 0-6 with a comment lately.
    span = chunk.stop_day - chunk.start_day + 1
    na = np.repeat(np.arange(n), rng.poisson(1.2 * span / 365))
    n_day = chunk.start_day[na] + (rng.random(len(na)) * span[na]).astype(np.int64)
    tone = _choose(rng, np.where(unhappy[:, None], [0.5, 0.3, 0.2], [0.2, 0.35, 0.45]), na)
    has_comment = rng.random(len(na)) < 0.35
    new_detractors = np.flatnonzero(chunk.cohort["new_detractor"])
    na = np.r_[na, new_detractors]
    n_day = np.r_[n_day, run.as_of_day - rng.integers(0, 3, len(new_detractors))]
    tone = np.r_[tone, np.zeros(len(new_detractors), int)]
    has_comment = np.r_[has_comment, np.ones(len(new_detractors), bool)]
    n_score = rng.integers(np.array([0, 7, 9])[tone], np.array([7, 9, 11])[tone])
    n_lt = _local_times(run, chunk, na, n_day, _office_seconds(rng, len(na)))

    # CSAT (1-5) for 40% of resolved tickets, within two days of the resolution.
    rated = np.flatnonzero(rng.random(len(tickets.account)) < 0.4)
    ca = tickets.account[rated]
    c_lt = tickets.resolved[rated] + rng.integers(600, 2 * DAY, len(rated))
    csat_share = np.where(unhappy[:, None], [0.15, 0.2, 0.3, 0.25, 0.1], [0.03, 0.05, 0.12, 0.35, 0.45])
    c_score = _choose(rng, csat_share, ca) + 1

    # Feedback for half the attended sessions that ended over a week ago (recent ones await the survey).
    reviewed = np.flatnonzero((attendance.day <= run.as_of_day - 8) & (rng.random(len(attendance.day)) < 0.5))
    fa = attendance.account[reviewed]
    f_day = attendance.day[reviewed] + rng.integers(1, 5, len(reviewed))
    f_lt = _local_times(run, chunk, fa, f_day, _office_seconds(rng, len(reviewed)))
    f_score = rng.choice(5, len(reviewed), p=[0.03, 0.07, 0.2, 0.4, 0.3]) + 1

    a = np.r_[na, ca, fa]
    lt = np.r_[n_lt, c_lt, f_lt]
    kind = np.r_[np.zeros(len(na), int), np.ones(len(ca), int), np.full(len(fa), 2)]
    score = np.r_[n_score, c_score, f_score]
    n_contact = _pick_contact(rng, contacts, na, known_share=0.95)
    contact = np.r_[n_contact, tickets.contact[rated], attendance.contact[reviewed]]
    tone = np.r_[tone, np.full(len(ca), -1), np.full(len(fa), TONES.index("training"))]
    has_comment = np.r_[has_comment, np.zeros(len(ca), bool), rng.random(len(fa)) < 0.2]
    training_id = pa.concat_arrays([pa.nulls(len(na) + len(ca), pa.string()), attendance.training_ids.take(reviewed)])

    happened = lt <= chunk.limit[a]
    order = np.flatnonzero(happened)[np.lexsort((lt[happened], a[happened]))]
    a, lt = a[order], lt[order]
    return _table(
        "survey_responses",
        response_id=run.new_ids("response", len(a)),
        account_id=chunk.ids.take(a),
        responded_at=_timestamps(chunk, a, lt),
        survey_type=_pick(("nps", "csat", "training_feedback"), kind[order]),
        score=_ints(score[order]),
        contact_id=_contact_ids(contacts, contact[order]),
        comment=_comments(rng, tone[order], chunk.is_jp[a], has_comment[order]),
        training_id=training_id.take(order),
    )


def _comments(rng: np.random.Generator, tone: np.ndarray, japanese: np.ndarray, wanted: np.ndarray) -> pa.Array:
    """A comment matching each row's tone, in Japanese for Japanese accounts; null where none was written."""
    texts = [COMMENTS[t, lang] for t in TONES for lang in ("en", "ja")]
    sizes = np.array([len(t) for t in texts])
    group = np.maximum(tone, 0) * 2 + japanese
    index = (np.cumsum(sizes) - sizes)[group] + (rng.random(len(tone)) * sizes[group]).astype(np.int64)
    return _pick([c for t in texts for c in t], np.where(wanted & (tone >= 0), index, -1))


def _invoices(run: _Run, chunk: _Chunk, orders: _OrderRows, rng: np.random.Generator) -> pa.Table:
    """One invoice per order, due 30 days later; late payers pay weeks late and some recent ones are unpaid."""
    a = orders.account
    m = len(a)
    due = orders.day + 30
    late = chunk.cohort["late_payer"][a] | (rng.random(m) < 0.04)
    paid = np.where(late, due + rng.integers(5, 61, m), due - rng.integers(0, 25, m))
    unpaid = (rng.random(m) < np.where(chunk.cohort["late_payer"][a], 0.3, 0.03)) & (due > run.as_of_day - 120)
    return _table(
        "invoices",
        invoice_id=run.new_ids("invoice", m),
        account_id=chunk.ids.take(a),
        due_date=_dates(due),
        amount=_money(orders.cents),
        paid_date=_dates(paid, valid=(paid <= run.as_of_day) & ~unpaid),
    )


# --------------------------------------------------------------------------- output


# Names and comments may hold commas and quotes; every other file is quoted only in its header.
FREE_TEXT_ENTITIES = ("accounts", "survey_responses")


class _LandingWriter:
    """One open writer per entity, so each chunk is appended to its file and then dropped."""

    def __init__(self, out_dir: Path, fmt: str, progress: Callable[[str, int], None] | None) -> None:
        self.rows = dict.fromkeys(ENTITIES, 0)
        self._progress = progress
        self._writers: dict[str, pacsv.CSVWriter | pq.ParquetWriter] = {}
        for name in ENTITIES:
            path = out_dir / f"{name}.{fmt}"
            if fmt == "csv":
                # "none" makes pyarrow refuse a structural character instead of writing a broken file.
                quoting = "needed" if name in FREE_TEXT_ENTITIES else "none"
                options = pacsv.WriteOptions(quoting_style=quoting)
                self._writers[name] = pacsv.CSVWriter(path, _schema(name), write_options=options)
            else:
                self._writers[name] = pq.ParquetWriter(path, _schema(name), compression="zstd")

    def write(self, entity: str, table: pa.Table) -> None:
        self._writers[entity].write_table(table)
        self.rows[entity] += table.num_rows
        if self._progress is not None:
            self._progress(entity, self.rows[entity])

    def __enter__(self) -> _LandingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for writer in self._writers.values():
            writer.close()


@cache
def _schema(entity: str) -> pa.Schema:
    """Every column as text: values are already formatted the way the contract spells them."""
    return pa.schema([pa.field(name, pa.string()) for name in ENTITIES[entity].column_names])


def _table(entity: str, **columns: pa.Array) -> pa.Table:
    """Columns in contract order; a missing or unknown column is a bug in this module."""
    names = ENTITIES[entity].column_names
    if set(columns) != set(names):
        raise ValueError(f"{entity}: columns {sorted(columns)} do not match the contract {names}")
    return pa.Table.from_arrays([columns[name] for name in names], schema=_schema(entity))


# --------------------------------------------------------------------------- value formatting


def _pick(values: Sequence[str], index: np.ndarray) -> pa.Array:
    """values[index] as text, null where index is -1."""
    index = np.asarray(index)
    return pa.array(values, pa.string()).take(pa.array(np.maximum(index, 0), mask=index < 0))


def _null_where(values: pa.Array, mask: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(mask, pa.bool_()), pa.scalar(None, pa.string()), values)


def _zero_pad(numbers: np.ndarray, digits: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), digits, "0")


def _ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    return pc.binary_join_element_wise(prefix, _zero_pad(numbers, digits), "")


def _ints(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pc.cast(pa.array(values, mask=None if valid is None else ~valid), pa.string())


def _bools(values: np.ndarray) -> pa.Array:
    return _pick(("false", "true"), values.astype(np.int64))


def _money(cents: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Cents as a decimal with two places, e.g. 123456 -> 1234.56."""
    units, rest = np.divmod(np.asarray(cents, dtype=np.int64), 100)
    text = pc.binary_join_element_wise(pc.cast(pa.array(units), pa.string()), _zero_pad(rest, 2), ".")
    return text if valid is None else _null_where(text, ~valid)


def _to_cents(units: np.ndarray, step_cents: np.ndarray | int) -> np.ndarray:
    """Amounts in currency units to cents, rounded to a multiple of step_cents (yen have no cents)."""
    return np.rint(np.asarray(units) * 100 / step_cents).astype(np.int64) * step_cents


def _cent_step(chunk: _Chunk, a: np.ndarray) -> np.ndarray:
    """Yen amounts are whole yen; dollar amounts keep their cents."""
    return np.where(chunk.rate[a] > 1, 100, 1)


def _day_labels(days: np.ndarray, suffix: str = "") -> tuple[pa.Array, int]:
    """ISO labels for every day between the smallest and largest of `days`, and that smallest day."""
    low = int(days.min()) if len(days) else 0
    high = int(days.max()) if len(days) else -1
    labels = np.arange(low, high + 1).astype("datetime64[D]").astype(str)
    return pa.array([f"{label}{suffix}" for label in labels], pa.string()), low


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    labels, low = _day_labels(days)
    index = days - low
    return labels.take(pa.array(index, mask=None if valid is None else ~valid))


@cache
def _clock() -> pa.Array:
    """HH:MM:SS for every second of a day: formatting by lookup is much faster than strftime."""
    return pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY)], pa.string())


def _timestamps(chunk: _Chunk, a: np.ndarray, lt: np.ndarray) -> pa.Array:
    """Local wall-clock seconds as ISO 8601 with the account's offset, e.g. 2026-03-31T10:15:00+09:00."""
    day, second = np.divmod(lt, DAY)
    labels, low = _day_labels(day, suffix="T")
    return pc.binary_join_element_wise(
        labels.take(day - low), _clock().take(second), _pick(OFFSETS, chunk.offset[a]), ""
    )


# --------------------------------------------------------------------------- sampling helpers


def _choose(rng: np.random.Generator, probs: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One category per row, drawn from the probabilities of the row's group (a row of `probs`).

    Vectorised: each group's cumulative distribution is shifted by its index
    so one searchsorted serves all groups at once.
    """
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    k = probs.shape[1]
    flat = (cum + np.arange(len(cum))[:, None]).ravel()
    picks = np.searchsorted(flat, group + rng.random(len(group)), side="right") - group * k
    return np.minimum(picks, k - 1)


def _office_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Second of the local day, mostly in office hours."""
    return np.clip(rng.normal(13.5 * 3600, 3 * 3600, n), 0, DAY - 1).astype(np.int64)


def _local_times(run: _Run, chunk: _Chunk, a: np.ndarray, day: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Local timestamps; on as_of itself, times are squeezed before the account's limit (keeping their order)."""
    cutoff = chunk.limit[a] - run.as_of_day * DAY  # last second of as_of the account may use
    second = np.where(day == run.as_of_day, second * (cutoff + 1) // DAY, second)
    return day * DAY + second


def _distinct_times(a: np.ndarray, lt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort rows by account and time and move ties a second earlier, so keys without an id stay unique.

    Returns the sort order and the adjusted times. Walking backwards
    (t[i] = min(t[i], t[i+1] - 1) within an account) never moves a time later,
    so nothing crosses the as_of limit.
    """
    order = np.lexsort((lt, a))
    a, lt = a[order], lt[order]
    position = np.arange(len(lt))
    shifted = lt - position + a * (1 << 40)  # separate accounts so one running minimum serves all
    return order, np.minimum.accumulate(shifted[::-1])[::-1] - a * (1 << 40) + position


def _pick_contact(
    rng: np.random.Generator, contacts: _Contacts, a: np.ndarray, known_share: float, subscribed_only: bool = False
) -> np.ndarray:
    """A random contact of each row's account (index into contacts.ids), -1 for an unknown person.

    With subscribed_only, an unsubscribed pick passes to the next colleague,
    and the row gets -1 when that one unsubscribed too.
    """
    first, count = contacts.first[a], contacts.count[a]
    pick = first + (rng.random(len(a)) * count).astype(np.int64)
    if subscribed_only:
        pick = np.where(contacts.unsubscribed[pick], first + (pick - first + 1) % count, pick)
        pick = np.where(contacts.unsubscribed[pick], -1, pick)
    return np.where(rng.random(len(a)) < known_share, pick, -1)


def _contact_ids(contacts: _Contacts, index: np.ndarray) -> pa.Array:
    return contacts.ids.take(pa.array(np.maximum(index, 0), mask=index < 0))


# --------------------------------------------------------------------------- calendar helpers


def _add_months(days: np.ndarray | int, months: np.ndarray | int) -> np.ndarray:
    """Calendar months like PostgreSQL's `date + interval 'N months'`: the day is clipped to the month's end."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    day_of_month = (d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months, dtype=np.int64)
    month_days = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return (target.astype("datetime64[D]") + np.minimum(day_of_month, month_days - 1)).astype(np.int64)


def _month_of(days: np.ndarray) -> np.ndarray:
    """Month number 1-12 of each day."""
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1


def _month_start(days: np.ndarray | int) -> np.ndarray:
    month = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]")
    return month.astype("datetime64[D]").astype(np.int64)


def _day_label(day: int) -> str:
    return str(np.datetime64(int(day), "D"))
