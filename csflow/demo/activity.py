"""Product usage, web visits and marketing email engagement."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from csflow.demo.catalogue import (
    CATALOGUE,
    DAY,
    EMAILS_PER_ACCOUNT_YEAR,
    EVENT_TYPE_SHARE,
    EVENT_TYPES,
    FEATURE_POPULARITY,
    FEATURES,
    HIGH_PRICE_PRICING_PAGES,
    HIGH_PRICE_PRODUCT_PAGES,
    HISTORY_DAYS,
    PAGE_CATEGORIES,
    PAGE_CATEGORY,
    PAGE_CATEGORY_SHARE,
    PAGE_COUNT,
    PAGE_FIRST,
    PAGES,
    USAGE_EVENTS_PER_ACCOUNT,
    WEB_VISITS_PER_ACCOUNT,
)
from csflow.demo.plan import _Chunk, _Contacts, _Run
from csflow.demo.values import (
    _choose,
    _contact_ids,
    _distinct_times,
    _local_times,
    _money,
    _null_where,
    _office_seconds,
    _pick,
    _pick_contact,
    _table,
    _timestamps,
    _zero_pad,
)


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
    # Drawn last, so every draw above (and so every other account's events) stays as it was.
    keep = _churn_behaviour(run, chunk, a, day + run.first_day, rng)
    a, lt, event_type, feature, user = a[keep], lt[keep], event_type[keep], feature[keep], user[keep]
    return _table(
        "usage_events",
        account_id=chunk.ids.take(a),
        occurred_at=_timestamps(chunk, a, lt),
        event_type=_pick(EVENT_TYPES, event_type),
        event_id=run.new_ids("event", len(a)),
        user_id=user_ids.take(user),
        feature=_pick(FEATURES, feature),
    )


def _churn_behaviour(run: _Run, chunk: _Chunk, a: np.ndarray, day: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which usage events to keep so that churn goes with behaviour, with noise (a mask over the rows).

    Accounts that churn use the product less all along (40-90% of their
    volume), and three in four fade over the 45-120 days before their
    contract ends, down to 5-40%; the others leave without warning. One in
    twelve accounts that stay has a 60-day dip to 30-70% some time before the
    last five months (a false alarm for any threshold). So a backtest or a
    model has something true to find, and cannot find all of it.
    """
    n = chunk.size
    level = np.where(chunk.churned, rng.uniform(0.4, 0.9, n), 1.0)
    warned = chunk.churned & (rng.random(n) < 0.75)
    fade_days = rng.integers(45, 121, n)
    floor = rng.uniform(0.05, 0.4, n)
    dipped = ~chunk.churned & (rng.random(n) < 1 / 12)
    dip_start = run.first_day + rng.integers(0, max(1, run.as_of_day - 150 - run.first_day), n)
    dip_depth = rng.uniform(0.3, 0.7, n)
    to_end = chunk.end_day[a] - day
    keep = level[a]
    fading = warned[a] & (to_end >= 0) & (to_end < fade_days[a])
    keep = np.where(fading, keep * (floor[a] + (1 - floor[a]) * to_end / fade_days[a]), keep)
    in_dip = dipped[a] & (day >= dip_start[a]) & (day < dip_start[a] + 60)
    keep = np.where(in_dip, keep * dip_depth[a], keep)
    return rng.random(len(a)) < keep


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
