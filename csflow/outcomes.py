"""Outcomes: what came of a playbook firing, recorded by a CSM.

An outcome is set on ops.playbook_actions by a CSM: completing a task or
pressing an outcome button in the workspace (csflow.web), `csflow outcome
ACTION_ID won`, or importing an outcomes.csv (action_id, outcome[, note][,
recorded_at]), for example exported from the CRM. The playbook_effectiveness mart reads
them, together with the orders that followed each firing.

Setting an outcome again replaces it (the latest word counts); an import
can be repeated safely. Rows are checked the way ingest checks landing files
(csflow.casting: NUL bytes, offsets, ranges), so a bad row is reported with
its line and reason and the good rows are still recorded.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from csflow.audit import audit
from csflow.casting import cast_column, printable
from csflow.contract import OUTCOMES_FILE, Column

log = logging.getLogger(__name__)

__all__ = ["OUTCOMES", "OUTCOMES_FILE", "OutcomeImport", "import_outcomes", "import_outcomes_reported", "set_outcome"]

OUTCOMES = ("won", "lost", "no_response", "in_progress")
# The file's columns, checked like landing columns (action ids are bigserial).
FILE_COLUMNS = (
    Column("action_id", "int", required=True, min_value=1, max_value=2**63 - 1),
    Column("outcome", "text", required=True, allowed=OUTCOMES),
    Column("note", "text"),
    Column("recorded_at", "timestamp"),
)
COLUMNS = tuple(c.name for c in FILE_COLUMNS)
REQUIRED = tuple(c.name for c in FILE_COLUMNS if c.required)


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


def set_outcome(conn: sa.Connection, action_id: int, outcome: str, actor: str, note: str | None = None) -> str | None:
    """Record one firing's outcome (the latest word counts) and audit it; returns the outcome it had before.

    The one place an outcome is set by a person: `csflow outcome`, a task
    completed in the workspace, an outcome button in a CSM alert. A ValueError
    names what is wrong (unknown firing, an outcome not in OUTCOMES).
    """
    value = _check_outcome(outcome)
    previous = conn.execute(
        sa.text("select outcome from ops.playbook_actions where action_id = :id for update"), {"id": action_id}
    ).first()
    if previous is None:
        raise ValueError(f"action {action_id}: no such firing in ops.playbook_actions")
    conn.execute(
        sa.text(
            "update ops.playbook_actions set outcome = :o, outcome_note = coalesce(:n, outcome_note), "
            "outcome_at = now() where action_id = :id"
        ),
        {"o": value, "n": note, "id": action_id},
    )
    audit(conn, actor, "recorded outcome", "firing", action_id, outcome=value, previous=previous[0], note=note)
    return previous[0]


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
                raise ValueError(f"{path}: unknown column {printable(unknown[0])!r}; columns are {', '.join(COLUMNS)}")
            reader.fieldnames = header
            rows = _parse_rows(reader, report)
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    with engine.begin() as conn:
        conn.execute(sa.text("set local timezone = 'UTC'"))  # a recorded_at without offset means UTC
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
        for (action_id,) in changed:
            audit(conn, f"file:{path.name}", "recorded outcome", "firing", action_id)
    report.recorded = len(changed)
    report.unchanged = len(good) - len(changed)
    report.rejects.sort()
    return report


def import_outcomes_reported(engine: sa.Engine, path: Path) -> OutcomeImport:
    """import_outcomes for the nightly run: a file it cannot read at all is reported, never raised.

    Every run imports the landing folder's outcomes file, so a bad one must not
    fail every night until someone deletes it.
    """
    try:
        return import_outcomes(engine, path)
    except (ValueError, sa.exc.DBAPIError) as exc:
        log.error("%s was not imported: %s", path.name, exc)
        return OutcomeImport(file=str(path), rejects=[(1, f"file not imported: {exc}")])


def _parse_rows(reader: csv.DictReader, report: OutcomeImport) -> list[tuple[int, dict]]:
    """(line, row) for the rows that pass the checks, one per action; reject the others with a reason."""
    lines: list[int] = []
    values: dict[str, list[str | None]] = {c: [] for c in COLUMNS}
    for row in reader:
        if None in row:  # more fields than the header names
            report.rejects.append((reader.line_num, "more fields than the header"))
            continue
        lines.append(reader.line_num)
        for c in COLUMNS:
            value = row.get(c)
            values[c].append(value.lower() if c == "outcome" and value else value)
    checked = {c.name: cast_column(pa.array(values[c.name], pa.string()), c) for c in FILE_COLUMNS}
    kept: dict[int, tuple[int, dict]] = {}
    for i, line in enumerate(lines):
        bad = next(((name, r) for name, r in checked.items() if r.invalid[i].as_py()), None)
        if bad is not None:
            name, result = bad
            report.rejects.append((line, f"{name} {printable(values[name][i] or '')!r}: {result.reason[i].as_py()}"))
            continue
        row = {name: r.text[i].as_py() for name, r in checked.items()}
        action_id = int(row["action_id"])
        if action_id in kept:  # the file's later line wins, as when the CRM exports a change
            report.rejects.append((kept[action_id][0], f"action_id {action_id} appears again on line {line}"))
        kept[action_id] = (line, {**row, "action_id": action_id})
    return list(kept.values())
