"""Accounts and their people, contracts, orders and invoices."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from csflow.demo.catalogue import (
    CATALOGUE,
    CROSS_SELL_PRODUCTS,
    CSM_NAMES,
    DAY,
    EN_FIRST_NAMES,
    EN_LAST_NAMES,
    EXTRA_ORDERS_PER_YEAR,
    INDUSTRIES,
    JP_FAMILY_NAMES,
    JP_GIVEN_NAMES,
    ORDER_TYPES,
    PLAN_PRODUCT,
    PLANS,
    REGIONS,
    ROLE_SHARE,
    ROLES,
    UPSELL_PRODUCTS,
)
from csflow.demo.plan import _Chunk, _Contacts, _ContractRows, _csm_count, _OrderRows, _Run
from csflow.demo.values import (
    _add_months,
    _bools,
    _cent_step,
    _dates,
    _ints,
    _local_times,
    _money,
    _month_of,
    _null_where,
    _office_seconds,
    _pick,
    _table,
    _timestamps,
    _to_cents,
    _zero_pad,
)


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
        owner_name=_pick(CSM_NAMES, (chunk.csm - 1) % len(CSM_NAMES)),
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
