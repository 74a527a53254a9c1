"""Outcomes: what came of a playbook firing, recorded by a CSM.

An outcome is set on ops.playbook_actions by `csflow outcome ACTION_ID won`
or by importing an outcomes.csv (action_id, outcome[, note][, recorded_at]),
for example exported from the CRM. The playbook_effectiveness mart reads
them, together with the orders that followed each firing.

Setting an outcome again replaces it (the latest word counts); an import
can be repeated safely. Bad rows of a file are reported with their line and
reason and the good rows are still recorded.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from csflow.playbooks import ensure_playbook_schema

OUTCOMES = ("won", "lost", "no_response", "in_progress")
COLUMNS = ("action_id", "outcome", "note", "recorded_at")
REQUIRED = ("action_id", "outcome")


@dataclass
class OutcomeImport:
    file: str
    recorded: int = 0  # rows that set or changed an outcome
    unchanged: int = 0  # rows that repeated what was already recorded
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _check_outcome(outcome: str) -> str:
    value = outcome.strip().lower()
    if value not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    return value


_APPLY_SQL = """
with given as (
  select * from jsonb_to_recordset(cast(:rows as jsonb))
    as x(action_id bigint, outcome text, note text, recorded_at timestamptz)
)
update ops.playbook_actions a
set outcome = g.outcome, outcome_note = g.note, outcome_at = coalesce(g.recorded_at, now())
from given g
where a.action_id = g.action_id
  and (a.outcome is distinct from g.outcome or a.outcome_note is distinct from g.note)
returning a.action_id
"""


def record_outcome(engine: sa.Engine, action_id: int, outcome: str, note: str | None = None) -> None:
    """Record one outcome; a ValueError names what is wrong (unknown action, bad outcome)."""
    value = _check_outcome(outcome)
    ensure_playbook_schema(engine)
    with engine.begin() as conn:
        exists = conn.execute(
            sa.text("select 1 from ops.playbook_actions where action_id = :id"), {"id": action_id}
        ).first()
        if exists is None:
            raise ValueError(f"action {action_id}: no such firing in ops.playbook_actions")
        conn.execute(
            sa.text(_APPLY_SQL),
            {"rows": json.dumps([{"action_id": action_id, "outcome": value, "note": note}])},
        )


def import_outcomes(engine: sa.Engine, path: Path) -> OutcomeImport:
    """Record every good row of an outcomes CSV in one transaction; report the bad ones."""
    report = OutcomeImport(file=str(path))
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise ValueError(f"{path}: header must name {', '.join(REQUIRED)} (missing {', '.join(missing)})")
            unknown = [c for c in header if c not in COLUMNS]
            if unknown:
                raise ValueError(f"{path}: unknown column {unknown[0]!r}; columns are {', '.join(COLUMNS)}")
            reader.fieldnames = header
            rows = _parse_rows(reader, report)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    ensure_playbook_schema(engine)
    with engine.begin() as conn:
        known = set(
            conn.execute(
                sa.text("select action_id from ops.playbook_actions where action_id = any(:ids)"),
                {"ids": [row["action_id"] for _, row in rows]},
            ).scalars()
        )
        good = []
        for line, row in rows:
            if row["action_id"] in known:
                good.append(row)
            else:
                report.rejects.append((line, f"action_id {row['action_id']}: no such firing"))
        changed = conn.execute(sa.text(_APPLY_SQL), {"rows": json.dumps(good)}).all() if good else []
    report.recorded = len(changed)
    report.unchanged = len(good) - len(changed)
    report.rejects.sort()
    return report


def _parse_rows(reader: csv.DictReader, report: OutcomeImport) -> list[tuple[int, dict]]:
    """(line, row) for the rows that parse, one per action; reject the others with a reason."""
    kept: dict[int, tuple[int, dict]] = {}
    for row in reader:
        line = reader.line_num
        if None in row:  # more fields than the header names
            report.rejects.append((line, "more fields than the header"))
            continue
        raw_id = (row.get("action_id") or "").strip()
        try:
            action_id = int(raw_id)
        except ValueError:
            report.rejects.append((line, f"action_id {raw_id!r} is not a whole number"))
            continue
        try:
            outcome = _check_outcome(row.get("outcome") or "")
        except ValueError as exc:
            report.rejects.append((line, str(exc)))
            continue
        recorded_at = (row.get("recorded_at") or "").strip() or None
        if recorded_at:
            try:
                datetime.fromisoformat(recorded_at)
            except ValueError:
                report.rejects.append((line, f"recorded_at {recorded_at!r} is not an ISO date or timestamp"))
                continue
        if action_id in kept:  # the file's later line wins, as when the CRM exports a change
            report.rejects.append((kept[action_id][0], f"action_id {action_id} appears again on line {line}"))
        note = (row.get("note") or "").strip() or None
        kept[action_id] = (line, {"action_id": action_id, "outcome": outcome, "note": note, "recorded_at": recorded_at})
    return list(kept.values())
