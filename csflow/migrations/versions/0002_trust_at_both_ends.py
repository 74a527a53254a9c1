"""Trust at both ends: suppressions, idempotent claims, skipped messages, load statuses.

- ops.suppressions: one row per suppressed address.
- ops.outbox: `skipped` (suppressed at send time) and claimed_idempotent (a
  claim for a backend where sending again is harmless goes back to pending
  after a crash).
- raw.loads: rows_duplicate, and the statuses a load can have, `interrupted`
  included; raw.current_load_rejects reads only finished loads.

Revision ID: 0002
Revises: 0001

"If not exists" throughout: a warehouse a development build of this change
already touched upgrades the same way.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table raw.loads add column if not exists rows_duplicate bigint not null default 0;
        update raw.loads set status = 'interrupted', finished_at = coalesce(finished_at, now())
          where status not in ('running', 'loaded', 'rejected', 'interrupted');
        alter table raw.loads drop constraint if exists loads_status_check;
        alter table raw.loads add constraint loads_status_check
          check (status in ('running', 'loaded', 'rejected', 'interrupted'));
        create or replace view raw.current_load_rejects as
        select r.*
        from raw.load_rejects r
        join (select entity, max(load_id) as load_id from raw.loads
              where status in ('loaded', 'rejected') group by entity) latest
          using (entity, load_id);

        update ops.run_context set timezone = 'UTC' where timezone is null;
        alter table ops.run_context alter column timezone set not null;

        alter table ops.outbox add column if not exists claimed_idempotent boolean not null default false;
        alter table ops.outbox drop constraint if exists outbox_status_check;
        alter table ops.outbox add constraint outbox_status_check
          check (status in ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled', 'skipped'));

        create table if not exists ops.suppressions (
          address text primary key,
          reason text not null,
          source text not null,
          created_at timestamptz not null default now(),
          constraint suppressions_address_check check (address = lower(address)),
          constraint suppressions_reason_check check (reason in ('unsubscribe', 'bounce', 'spam_report', 'manual'))
        );
        """
    )
