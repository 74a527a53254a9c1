"""The CSM workspace: tasks that can be done, snoozed and reassigned; an audit
trail; single-use sign-in links; what the provider says about each message.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table ops.tasks add column snoozed_until date;
        alter table ops.tasks add column completed_at timestamptz;
        alter table ops.tasks add column completed_by text;
        create index tasks_open_owner on ops.tasks (lower(owner_email)) where status = 'open';
        create index tasks_open_account on ops.tasks (account_id) where status = 'open';
        create index playbook_actions_history on ops.playbook_actions (account_id, fired_at);

        create table ops.audit_log (
          audit_id bigserial primary key,
          at timestamptz not null default now(),
          actor text not null,
          action text not null,
          target_type text not null,
          target_id text not null,
          detail jsonb not null default '{}'::jsonb
        );
        create index audit_log_target on ops.audit_log (target_type, target_id);

        create table ops.signin_links (
          token_hash text primary key,
          address text not null,
          created_at timestamptz not null default now(),
          expires_at timestamptz not null,
          used_at timestamptz
        );
        create table ops.signin_attempts (
          address text not null,
          client text not null,
          at timestamptz not null default now()
        );
        create index signin_attempts_at on ops.signin_attempts (at);

        create table ops.message_events (
          message_id bigint references ops.outbox (message_id) on delete cascade,
          provider_message_id text,
          provider_event_id text unique,
          event text not null,
          address text,
          occurred_at timestamptz not null,
          detail jsonb not null default '{}'::jsonb,
          received_at timestamptz not null default now()
        );
        create index message_events_message on ops.message_events (message_id);
        create index outbox_provider_message_id on ops.outbox (provider_message_id)
          where provider_message_id is not null;
        """
    )
