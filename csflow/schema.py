"""Every table csflow owns, declared once: schema `raw` (landing rows and load
bookkeeping) and schema `ops` (what csflow does). dbt owns the rest.

The declarations are the current shape; the Alembic migrations in
csflow/migrations/ are how a warehouse gets there, from nothing or from any
earlier release (a test checks that the two agree). `csflow migrate` applies
them; every command that writes checks the warehouse is current first.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from csflow.config import ConfigError
from csflow.contract import ENTITIES, LINE, LOAD_ID, UNKNOWN_ACCOUNT, Entity

metadata = sa.MetaData()

# --------------------------------------------------------------------------
# raw: one table per landing entity (csflow.contract), and the loads that wrote them

_KINDS: dict[str, sa.types.TypeEngine] = {
    "text": sa.Text(),
    "email": sa.Text(),
    "int": sa.Integer(),
    "numeric": sa.Numeric(),
    "date": sa.Date(),
    "timestamp": sa.DateTime(timezone=True),
    "bool": sa.Boolean(),
}


def _raw_table(entity: Entity) -> sa.Table:
    columns: list[sa.SchemaItem] = [sa.Column(c.name, _KINDS[c.kind]) for c in entity.columns]
    columns += [sa.Column(LOAD_ID, sa.BigInteger, nullable=False), sa.Column(LINE, sa.BigInteger, nullable=False)]
    if entity.has_account:
        columns.append(sa.Column(UNKNOWN_ACCOUNT, sa.Boolean, nullable=False, server_default=sa.false()))
        columns.append(
            sa.Index(f"{entity.name}_unknown_account", UNKNOWN_ACCOUNT, postgresql_where=sa.text(UNKNOWN_ACCOUNT))
        )
    return sa.Table(entity.name, metadata, *columns, schema="raw")


RAW_TABLES = {name: _raw_table(entity) for name, entity in ENTITIES.items()}

LOAD_STATUSES = ("running", "loaded", "rejected", "interrupted")

loads = sa.Table(
    "loads",
    metadata,
    sa.Column("load_id", sa.BigInteger, primary_key=True),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("rows_read", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_loaded", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_rejected", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_unknown_account", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_replaced", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rows_duplicate", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("message", sa.Text),
    sa.CheckConstraint(f"status in {LOAD_STATUSES}", name="loads_status_check"),
    schema="raw",
)

load_rejects = sa.Table(
    "load_rejects",
    metadata,
    sa.Column("load_id", sa.BigInteger, sa.ForeignKey("raw.loads.load_id", ondelete="cascade"), nullable=False),
    sa.Column("entity", sa.Text, nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("line", sa.BigInteger),
    sa.Column("column_name", sa.Text),
    sa.Column("value", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index("load_rejects_load_id", "load_id"),
    schema="raw",
)

# --------------------------------------------------------------------------
# ops: the run's logical date, firings, tasks, outbox, suppressions, validation

run_context = sa.Table(
    "run_context",
    metadata,
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("timezone", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("written_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    schema="ops",
)

ACTION_STATUSES = ("pending", "sent", "failed", "skipped")

playbook_actions = sa.Table(
    "playbook_actions",
    metadata,
    sa.Column("action_id", sa.BigInteger, primary_key=True),
    sa.Column("playbook", sa.Text, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("occasion_key", sa.Text, nullable=False),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("detail", sa.Text),
    sa.Column("outcome", sa.Text),
    sa.Column("outcome_note", sa.Text),
    sa.Column("outcome_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("playbook", "occasion_key", name="playbook_actions_playbook_occasion_key_key"),
    sa.CheckConstraint(f"status in {ACTION_STATUSES}", name="playbook_actions_status_check"),
    sa.Index("playbook_actions_account", "playbook", "account_id", "as_of_date"),
    # An account's communication history, newest first.
    sa.Index("playbook_actions_history", "account_id", "fired_at"),
    schema="ops",
)

TASK_STATUSES = ("open", "done", "cancelled")

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("task_id", sa.BigInteger, primary_key=True),
    sa.Column("action_id", sa.BigInteger, sa.ForeignKey("ops.playbook_actions.action_id"), nullable=False),
    sa.Column("owner_email", sa.Text, nullable=False),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # Out of the CSM's open list until this day (the workspace's "snooze").
    sa.Column("snoozed_until", sa.Date),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("completed_by", sa.Text),
    sa.CheckConstraint(f"status in {TASK_STATUSES}", name="tasks_status_check"),
    # The workspace's task lists: a CSM's open tasks, an account's open tasks.
    sa.Index("tasks_open_owner", sa.text("lower(owner_email)"), postgresql_where=sa.text("status = 'open'")),
    sa.Index("tasks_open_account", "account_id", postgresql_where=sa.text("status = 'open'")),
    schema="ops",
)

# Every change made through the workspace or a link: who, when, what.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("audit_id", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target_type", sa.Text, nullable=False),
    sa.Column("target_id", sa.Text, nullable=False),
    sa.Column("detail", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Index("audit_log_target", "target_type", "target_id"),
    schema="ops",
)

# Single-use sign-in links (only a hash of the token is kept), and every request for one.
signin_links = sa.Table(
    "signin_links",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("used_at", sa.DateTime(timezone=True)),
    schema="ops",
)

signin_attempts = sa.Table(
    "signin_attempts",
    metadata,
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("client", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("signin_attempts_at", "at"),
    schema="ops",
)

MESSAGE_STATUSES = ("pending", "sending", "sent", "failed", "unknown", "cancelled", "skipped")
MESSAGE_KINDS = ("playbook", "digest", "report", "alert", "signin")

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("message_id", sa.BigInteger, primary_key=True),
    sa.Column("dedupe_key", sa.Text, nullable=False, unique=True),
    sa.Column("action_id", sa.BigInteger),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("playbook", sa.Text),
    sa.Column("to_email", sa.Text, nullable=False),
    sa.Column("to_name", sa.Text),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("html_body", sa.Text, nullable=False),
    sa.Column("text_body", sa.Text, nullable=False),
    sa.Column("is_customer_facing", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("unsubscribe_url", sa.Text),
    # Customer email is from the company with Reply-To the owning CSM; null: the settings' sender.
    sa.Column("from_email", sa.Text),
    sa.Column("from_name", sa.Text),
    sa.Column("reply_to", sa.Text),
    sa.Column("inline_images", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_by", sa.Integer),
    # The claim was made for a backend where sending again is harmless (files).
    sa.Column("claimed_idempotent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("provider_message_id", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint(f"status in {MESSAGE_STATUSES}", name="outbox_status_check"),
    sa.Index("outbox_pending", "message_id", postgresql_where=sa.text("status = 'pending'")),
    sa.Index("outbox_action", "action_id", postgresql_where=sa.text("action_id is not null")),
    # Provider events (csflow.provider_events) find their message by it.
    sa.Index("outbox_provider_message_id", "provider_message_id", postgresql_where=sa.text("provider_message_id is not null")),
    schema="ops",
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column(
        "message_id", sa.BigInteger, sa.ForeignKey("ops.outbox.message_id", ondelete="cascade"), primary_key=True
    ),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("backend", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("detail", sa.Text),
    schema="ops",
)

# What the provider says happened to a message (SendGrid's Event Webhook: delivered, open, click, ...).
message_events = sa.Table(
    "message_events",
    metadata,
    sa.Column("message_id", sa.BigInteger, sa.ForeignKey("ops.outbox.message_id", ondelete="cascade")),
    sa.Column("provider_message_id", sa.Text),
    # SendGrid's sg_event_id: a post SendGrid retries is stored once.
    sa.Column("provider_event_id", sa.Text, unique=True),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("address", sa.Text),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("detail", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("message_events_message", "message_id"),
    schema="ops",
)

# Answers to csflow's own post-training survey page (/survey/<token>): one per
# contact and training. The marts read them beside the landing file's.
survey_responses = sa.Table(
    "survey_responses",
    metadata,
    sa.Column("response_id", sa.BigInteger, primary_key=True),
    sa.Column("action_id", sa.BigInteger),
    sa.Column("account_id", sa.Text, nullable=False),
    sa.Column("contact_id", sa.Text, nullable=False),
    sa.Column("training_id", sa.Text, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("responded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("score between 0 and 10", name="survey_responses_score_check"),
    sa.UniqueConstraint("training_id", "contact_id", name="survey_responses_training_id_contact_id_key"),
    schema="ops",
)

# The churn-risk model's runs: the model card (quality on held-out time,
# drivers, calibration) and the parameters marts.churn_risk scores with.
model_runs = sa.Table(
    "model_runs",
    metadata,
    sa.Column("model_version", sa.Text, primary_key=True),
    sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("horizon_days", sa.Integer, nullable=False),
    sa.Column("train_from", sa.Date),
    sa.Column("train_to", sa.Date),
    sa.Column("validation_from", sa.Date),
    sa.Column("validation_to", sa.Date),
    sa.Column("train_observations", sa.Integer, nullable=False),
    sa.Column("train_churners", sa.Integer, nullable=False),
    sa.Column("validation_observations", sa.Integer, nullable=False),
    sa.Column("validation_churners", sa.Integer, nullable=False),
    sa.Column("card", pg.JSONB, nullable=False),
    sa.Column("parameters", pg.JSONB),
    sa.CheckConstraint("status in ('published', 'too_few_churners')", name="model_runs_status_check"),
    schema="ops",
)

SUPPRESSION_REASONS = ("unsubscribe", "bounce", "spam_report", "manual")

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("address", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("address = lower(address)", name="suppressions_address_check"),
    sa.CheckConstraint(f"reason in {SUPPRESSION_REASONS}", name="suppressions_reason_check"),
    schema="ops",
)

validation_runs = sa.Table(
    "validation_runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("as_of_date", sa.Date, primary_key=True),
    sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("gate_open", sa.Boolean, nullable=False),
    sa.Column("suites_run", sa.Integer, nullable=False),
    sa.Column("suites_failed", sa.Integer, nullable=False),
    sa.Column("critical_failures", sa.Integer, nullable=False),
    sa.Column("warning_failures", sa.Integer, nullable=False),
    sa.Column("skipped_suites", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    schema="ops",
)

validation_results = sa.Table(
    "validation_results",
    metadata,
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("suite", sa.Text, nullable=False),
    sa.Column("table_name", sa.Text, nullable=False),
    sa.Column("expectation", sa.Text, nullable=False),
    sa.Column("column_name", sa.Text),
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("success", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("unexpected_count", sa.BigInteger),
    sa.Column("unexpected_percent", sa.Float),
    sa.Column("observed_value", pg.JSONB),
    sa.Column("sample", pg.JSONB),
    sa.Column("error", sa.Text),
    sa.ForeignKeyConstraint(
        ["run_id", "as_of_date"],
        ["ops.validation_runs.run_id", "ops.validation_runs.as_of_date"],
        ondelete="cascade",
    ),
    sa.Index("validation_results_run", "run_id", "as_of_date"),
    schema="ops",
)

# --------------------------------------------------------------------------
# Migrations

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE, VERSION_SCHEMA = "alembic_version", "ops"


def _alembic_config(connection: sa.Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    config = _alembic_config(None)  # type: ignore[arg-type]
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The warehouse's revision; None when csflow has never written to it."""
    with engine.connect() as conn:
        if conn.execute(sa.text("select to_regclass('ops.alembic_version')")).scalar() is None:
            return None
        return conn.execute(sa.text("select version_num from ops.alembic_version")).scalar()


def _has_csflow_tables(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("select to_regclass('raw.loads') is not null or to_regclass('ops.outbox') is not null")
        ).scalar_one()


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Apply every migration the warehouse lacks; returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
    return before, head_revision()


def require_current(engine: sa.Engine) -> None:
    """Before writing: a new warehouse gets its tables; an older one must be migrated on purpose.

    Upgrading a warehouse that holds a team's history is a step a person
    takes (after a backup), so csflow stops and names the command instead.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return
    if current is None and not _has_csflow_tables(engine):
        upgrade(engine)
        return
    raise ConfigError(
        f"the warehouse's tables are at revision {current or 'from before migrations'}, "
        f"this csflow needs {head}: run `csflow migrate` (back the database up first)"
    )
