"""What people read: customer email from the company with Reply-To the owning
CSM, signed with the CSM's name (accounts' optional owner_name), and survey
answers given on csflow's own survey page.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        alter table raw.accounts add column owner_name text;
        alter table ops.outbox add column from_email text;
        alter table ops.outbox add column from_name text;
        alter table ops.outbox add column reply_to text;

        create table ops.survey_responses (
          response_id bigserial primary key,
          action_id bigint,
          account_id text not null,
          contact_id text not null,
          training_id text not null,
          score integer not null check (score between 0 and 10),
          comment text,
          responded_at timestamptz not null default now(),
          unique (training_id, contact_id)
        );
        """
    )

