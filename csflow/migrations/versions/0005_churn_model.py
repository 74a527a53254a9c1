"""Evidence: the churn-risk model's runs, each with its model card and the
parameters the churn_risk mart scores with.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        create table ops.model_runs (
          model_version text primary key,
          trained_at timestamptz not null default now(),
          as_of_date date not null,
          status text not null check (status in ('published', 'too_few_churners')),
          horizon_days integer not null,
          train_from date,
          train_to date,
          validation_from date,
          validation_to date,
          train_observations integer not null,
          train_churners integer not null,
          validation_observations integer not null,
          validation_churners integer not null,
          card jsonb not null,
          parameters jsonb
        );
        """
    )


def downgrade() -> None:
    op.execute("drop table ops.model_runs")
