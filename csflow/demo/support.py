"""Support tickets, trainings and survey responses (with comments)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from csflow.demo.catalogue import (
    CHANNEL_SHARE,
    CHANNELS,
    COMMENTS,
    DAY,
    TICKET_CATEGORIES,
    TICKET_CATEGORY_SHARE,
    TICKETS_PER_YEAR,
    TONES,
    TOPICS,
)
from csflow.demo.plan import _Attendance, _Chunk, _Contacts, _ResolvedTickets, _Run
from csflow.demo.values import (
    _bools,
    _choose,
    _contact_ids,
    _dates,
    _ints,
    _local_times,
    _null_where,
    _office_seconds,
    _pick,
    _pick_contact,
    _table,
    _timestamps,
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
