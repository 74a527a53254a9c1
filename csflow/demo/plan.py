"""Run and chunk state: who each account is (cohorts, contracts, time zone) before any file is written."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from csflow.demo.catalogue import (
    ACCOUNTS_PER_CSM,
    CATALOGUE,
    COHORT_SHARE,
    CONTRACT_STATES,
    CROSS_SELL_PRODUCTS,
    DAY,
    EN_COMPANY_KINDS,
    EN_COMPANY_STEMS,
    FISCAL_MONTH_SHARE,
    HISTORY_DAYS,
    ID_FORMATS,
    INDUSTRIES,
    JP_COMPANY_KINDS,
    JP_COMPANY_STEMS,
    JPY_PER_USD,
    LEGAL_FORM,
    OFFSET_SECONDS,
    PLAN_ARR_SIGMA,
    PLAN_ARR_USD,
    PLAN_SHARE,
    PLANS,
    REGION_OFFSET_SHARE,
    REGION_SHARE,
    REGIONS,
    SITE,
)
from csflow.demo.values import _add_months, _choose, _day_label, _ids, _month_start, _to_cents


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
        # Where as_of has not begun yet (west of the run's time zone), the limit falls on the day
        # before it: such an account has no activity on as_of, rather than activity in the future.
        limit = np.minimum(limit, run.not_after + OFFSET_SECONDS[offset])

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


def _csm_count(run: _Run) -> int:
    """One CSM per ACCOUNTS_PER_CSM accounts, at least one."""
    return -(-run.accounts // ACCOUNTS_PER_CSM)
