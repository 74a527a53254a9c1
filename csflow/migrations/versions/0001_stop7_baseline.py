"""The tables of csflow's last release before migrations (stop 7), as it created them.

Every statement is "if not exists", so this one migration both builds a new
warehouse and adopts one that release created: what is there is kept, what is
missing is added. Frozen: later changes are later migrations.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RAW = """
create schema if not exists raw;
create table if not exists raw.loads (
  load_id bigserial primary key,
  entity text not null,
  file_name text not null,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  status text not null,
  rows_read bigint not null default 0,
  rows_loaded bigint not null default 0,
  rows_rejected bigint not null default 0,
  rows_unknown_account bigint not null default 0,
  rows_replaced bigint not null default 0,
  message text
);
create table if not exists raw.load_rejects (
  load_id bigint not null references raw.loads (load_id) on delete cascade,
  entity text not null,
  file_name text not null,
  line bigint,
  column_name text,
  value text,
  reason text not null
);
create index if not exists load_rejects_load_id on raw.load_rejects (load_id);
create table if not exists raw.accounts (
  "account_id" text,
  "account_name" text,
  "owner_email" text,
  "created_date" date,
  "industry" text,
  "plan" text,
  "region" text,
  "fiscal_year_end_month" integer,
  _load_id bigint not null,
  _line bigint not null
);
create table if not exists raw.contacts (
  "contact_id" text,
  "account_id" text,
  "email" text,
  "contact_name" text,
  "role" text,
  "is_unsubscribed" boolean,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists contacts_unknown_account on raw.contacts (_unknown_account) where _unknown_account;
create table if not exists raw.contracts (
  "contract_id" text,
  "account_id" text,
  "plan" text,
  "start_date" date,
  "end_date" date,
  "arr" numeric,
  "status" text,
  "auto_renew" boolean,
  "currency" text,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists contracts_unknown_account on raw.contracts (_unknown_account) where _unknown_account;
create table if not exists raw.orders (
  "order_id" text,
  "account_id" text,
  "ordered_at" timestamptz,
  "amount" numeric,
  "product_sku" text,
  "product_name" text,
  "order_type" text,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists orders_unknown_account on raw.orders (_unknown_account) where _unknown_account;
create table if not exists raw.usage_events (
  "account_id" text,
  "occurred_at" timestamptz,
  "event_type" text,
  "event_id" text,
  "user_id" text,
  "feature" text,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists usage_events_unknown_account on raw.usage_events (_unknown_account) where _unknown_account;
create table if not exists raw.web_visits (
  "account_id" text,
  "visited_at" timestamptz,
  "page_url" text,
  "contact_id" text,
  "page_category" text,
  "product_sku" text,
  "list_price" numeric,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists web_visits_unknown_account on raw.web_visits (_unknown_account) where _unknown_account;
create table if not exists raw.email_events (
  "account_id" text,
  "occurred_at" timestamptz,
  "event" text,
  "contact_id" text,
  "campaign" text,
  "link_url" text,
  "product_sku" text,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists email_events_unknown_account on raw.email_events (_unknown_account) where _unknown_account;
create table if not exists raw.support_tickets (
  "ticket_id" text,
  "account_id" text,
  "opened_at" timestamptz,
  "channel" text,
  "category" text,
  "status" text,
  "resolved_at" timestamptz,
  "contact_id" text,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists support_tickets_unknown_account on raw.support_tickets (_unknown_account) where _unknown_account;
create table if not exists raw.survey_responses (
  "response_id" text,
  "account_id" text,
  "responded_at" timestamptz,
  "survey_type" text,
  "score" integer,
  "contact_id" text,
  "comment" text,
  "training_id" text,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists survey_responses_unknown_account on raw.survey_responses (_unknown_account) where _unknown_account;
create table if not exists raw.trainings (
  "training_id" text,
  "account_id" text,
  "contact_id" text,
  "session_date" date,
  "attended" boolean,
  "topic" text,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists trainings_unknown_account on raw.trainings (_unknown_account) where _unknown_account;
create table if not exists raw.invoices (
  "invoice_id" text,
  "account_id" text,
  "due_date" date,
  "amount" numeric,
  "paid_date" date,
  _load_id bigint not null,
  _line bigint not null,
  _unknown_account boolean not null default false
);
create index if not exists invoices_unknown_account on raw.invoices (_unknown_account) where _unknown_account;
create or replace view raw.current_load_rejects as
select r.*
from raw.load_rejects r
join (select entity, max(load_id) as load_id from raw.loads group by entity) latest
  using (entity, load_id);
"""

OPS = """
create schema if not exists ops;
create table if not exists ops.run_context (
  as_of_date date not null,
  timezone text not null,
  run_id text not null,
  written_at timestamptz not null default now()
);
alter table ops.run_context add column if not exists timezone text;
create table if not exists ops.playbook_actions (
  action_id bigserial primary key,
  playbook text not null,
  account_id text not null,
  occasion_key text not null,
  as_of_date date not null,
  fired_at timestamptz not null default now(),
  channel text not null,
  recipient text,
  status text not null default 'pending' check (status in ('pending', 'sent', 'failed', 'skipped')),
  detail text,
  outcome text,
  outcome_note text,
  outcome_at timestamptz,
  unique (playbook, occasion_key)
);
create index if not exists playbook_actions_account on ops.playbook_actions (playbook, account_id, as_of_date);
create table if not exists ops.tasks (
  task_id bigserial primary key,
  action_id bigint not null references ops.playbook_actions (action_id),
  owner_email text not null,
  account_id text not null,
  title text not null,
  due_date date not null,
  status text not null default 'open' check (status in ('open', 'done', 'cancelled')),
  created_at timestamptz not null default now()
);
create table if not exists ops.outbox (
  message_id bigserial primary key,
  dedupe_key text not null unique,
  action_id bigint,
  kind text not null,
  playbook text,
  to_email text not null,
  to_name text,
  subject text not null,
  html_body text not null,
  text_body text not null,
  is_customer_facing boolean not null default false,
  unsubscribe_url text,
  inline_images jsonb not null default '[]'::jsonb,
  status text not null default 'pending'
    check (status in ('pending', 'sending', 'sent', 'failed', 'unknown', 'cancelled')),
  attempts integer not null default 0,
  claimed_by integer,
  claimed_at timestamptz,
  next_attempt_at timestamptz,
  provider_message_id text,
  last_error text,
  queued_at timestamptz not null default now(),
  sent_at timestamptz
);
create index if not exists outbox_pending on ops.outbox (message_id) where status = 'pending';
create index if not exists outbox_action on ops.outbox (action_id) where action_id is not null;
create table if not exists ops.delivery_attempts (
  message_id bigint not null references ops.outbox (message_id) on delete cascade,
  attempt integer not null,
  backend text not null,
  started_at timestamptz not null,
  finished_at timestamptz not null default now(),
  outcome text not null,
  status_code integer,
  detail text,
  primary key (message_id, attempt)
);
create table if not exists ops.validation_runs (
  run_id text not null,
  as_of_date date not null,
  validated_at timestamptz not null,
  gate_open boolean not null,
  suites_run integer not null,
  suites_failed integer not null,
  critical_failures integer not null,
  warning_failures integer not null,
  skipped_suites text[] not null,
  seconds double precision not null,
  primary key (run_id, as_of_date)
);
create table if not exists ops.validation_results (
  run_id text not null,
  as_of_date date not null,
  suite text not null,
  table_name text not null,
  expectation text not null,
  column_name text,
  severity text not null,
  success boolean not null,
  description text not null,
  unexpected_count bigint,
  unexpected_percent double precision,
  observed_value jsonb,
  sample jsonb,
  error text,
  foreign key (run_id, as_of_date) references ops.validation_runs (run_id, as_of_date) on delete cascade
);
create index if not exists validation_results_run on ops.validation_results (run_id, as_of_date);
"""


def upgrade() -> None:
    op.execute(RAW)
    op.execute(OPS)
