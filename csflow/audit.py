"""The audit trail: every change a person makes (a task completed, snoozed or
reassigned, an outcome, an unsubscribe, a sign-in) is one row of ops.audit_log
with who, when and what, written in the same transaction as the change."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa


def audit(conn: sa.Connection, actor: str, action: str, target_type: str, target_id: object, **detail: Any) -> None:
    conn.execute(
        sa.text(
            "insert into ops.audit_log (actor, action, target_type, target_id, detail) "
            "values (:actor, :action, :type, :id, cast(:detail as jsonb))"
        ),
        {
            "actor": actor,
            "action": action,
            "type": target_type,
            "id": str(target_id),
            "detail": json.dumps(detail, default=str),
        },
    )
