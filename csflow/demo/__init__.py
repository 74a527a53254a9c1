"""Synthetic landing files that exercise every csflow playbook.

`csflow demo`, the tests and the benchmarks need realistic data without a
customer's export, so this module writes every landing file of the contract
(`csflow.contract.ENTITIES`) for N accounts as of a date.

Modules: catalogue (what the data is made of), plan (who each account is),
customers, activity and support (one per entity family), values (writing and
formatting).

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

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import numpy as np

from csflow.contract import ENTITIES
from csflow.demo.activity import _email_events, _usage_events, _web_visits
from csflow.demo.catalogue import CHUNK_ACCOUNTS, EPOCH, FORMATS
from csflow.demo.customers import _accounts, _contacts, _contracts, _invoices, _orders
from csflow.demo.plan import _plan_chunk, _Run
from csflow.demo.support import _support_tickets, _survey_responses, _trainings
from csflow.demo.values import _LandingWriter


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
