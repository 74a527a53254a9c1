"""The landing-file contract (data-contract.md section 1) as data: the owner of
every landing column's name, kind, requiredness, allowed values, key and
staging name.

Ingest, the demo data, the raw tables (csflow/schema.py) and the checks of the
dbt staging models (tests/test_dbt_project.py) all read it, so a column is
declared exactly once; its meaning is written once too, in the dbt project's
_landing__docs.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Column kinds: text, email (exactly one address, csflow.addresses), int, numeric,
# date, timestamp, bool. How each is stored in schema raw: csflow/schema.py.
KINDS = ("text", "email", "int", "numeric", "date", "timestamp", "bool")

TRUE_WORDS = ("true", "1", "yes", "t", "y")
FALSE_WORDS = ("false", "0", "no", "f", "n")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "text"
    required: bool = False
    # Closed set of allowed values (for text columns), or None when open.
    allowed: tuple[str, ...] | None = None
    # Inclusive bounds for int and numeric columns (e.g. money that may not be negative).
    min_value: int | None = None
    max_value: int | None = None
    # The column's name in staging when it is renamed there (booleans take is_).
    staged_as: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: kind {self.kind!r} is not one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Entity:
    name: str
    columns: tuple[Column, ...]
    # The id column(s) that identify a row: a reload replaces rows with the same
    # key. Empty for entities without a required id (events): a file that gives
    # their optional id (id_if_given) keys rows by it and the required columns;
    # one that does not keys them by every column it gives, so only a row
    # repeated exactly is one row.
    key: tuple[str, ...]
    # Whether rows carry an account_id that must exist in accounts.
    has_account: bool = True
    description: str = ""
    id_if_given: str | None = None
    # The timestamp saying when the row happened (events): rows after a run's
    # as_of are not used by that run, only counted.
    stamped_by: str | None = None
    _by_name: dict[str, Column] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({c.name: c for c in self.columns})

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def key_in(self, given: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        """The key of a file that gives these columns."""
        if self.key:
            return self.key
        if self.id_if_given in given:
            return (*self.required, self.id_if_given)
        return tuple(c for c in self.column_names if c in given)

    @property
    def full_key(self) -> tuple[str, ...]:
        """The key when a file gives every column (what dbt tests check)."""
        return self.key_in(self.column_names)


def _req(name: str, kind: str = "text", **kw: object) -> Column:
    return Column(name, kind, required=True, **kw)  # type: ignore[arg-type]


def _opt(name: str, kind: str = "text", **kw: object) -> Column:
    return Column(name, kind, required=False, **kw)  # type: ignore[arg-type]


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "accounts",
            (
                _req("account_id"),
                _req("account_name"),
                _req("owner_email", "email"),
                _req("created_date", "date"),
                _opt("industry"),
                _opt("plan"),
                _opt("region"),
                _opt("fiscal_year_end_month", "int", min_value=1, max_value=12),
                _opt("owner_name"),
            ),
            key=("account_id",),
            has_account=False,
            description="Customer accounts; owner_email is the CSM who owns the account.",
        ),
        Entity(
            "contacts",
            (
                _req("contact_id"),
                _req("account_id"),
                _req("email", "email"),
                _opt("contact_name"),
                _opt("role", allowed=("decision_maker", "admin", "user")),
                _opt("is_unsubscribed", "bool"),
            ),
            key=("contact_id",),
            description="People at customer accounts.",
        ),
        Entity(
            "contracts",
            (
                _req("contract_id"),
                _req("account_id"),
                _req("plan"),
                _req("start_date", "date"),
                _req("end_date", "date"),
                _req("arr", "numeric", min_value=0),
                _req("status", allowed=("active", "renewed", "churned")),
                _opt("auto_renew", "bool", staged_as="is_auto_renew"),
                _opt("currency"),
            ),
            key=("contract_id",),
            description="Subscription contracts with their annual recurring revenue.",
        ),
        Entity(
            "orders",
            (
                _req("order_id"),
                _req("account_id"),
                _req("ordered_at", "timestamp"),
                _req("amount", "numeric"),
                _opt("product_sku"),
                _opt("product_name"),
                _opt("order_type", allowed=("new", "renewal", "upsell", "cross_sell")),
            ),
            key=("order_id",),
            description="Purchases by accounts.",
            stamped_by="ordered_at",
        ),
        Entity(
            "usage_events",
            (
                _req("account_id"),
                _req("occurred_at", "timestamp"),
                _req("event_type"),
                _opt("event_id"),
                _opt("user_id"),
                _opt("feature"),
            ),
            key=(),
            id_if_given="event_id",
            description="Product usage events (logins, feature use, ...).",
            stamped_by="occurred_at",
        ),
        Entity(
            "web_visits",
            (
                _req("account_id"),
                _req("visited_at", "timestamp"),
                _req("page_url"),
                _opt("contact_id"),
                _opt(
                    "page_category",
                    allowed=("pricing", "product", "docs", "whitepaper", "blog"),
                ),
                _opt("product_sku"),
                _opt("list_price", "numeric"),
            ),
            key=(),
            description="Visits to the company web site by people at accounts.",
            stamped_by="visited_at",
        ),
        Entity(
            "email_events",
            (
                _req("account_id"),
                _req("occurred_at", "timestamp"),
                _req("event", allowed=("delivered", "open", "click")),
                _opt("contact_id"),
                _opt("campaign"),
                _opt("link_url"),
                _opt("product_sku"),
            ),
            key=(),
            description="Marketing email engagement.",
            stamped_by="occurred_at",
        ),
        Entity(
            "support_tickets",
            (
                _req("ticket_id"),
                _req("account_id"),
                _req("opened_at", "timestamp"),
                _req("channel", allowed=("email", "chat", "phone", "web")),
                _opt("category"),
                _opt("status"),
                _opt("resolved_at", "timestamp"),
                _opt("contact_id"),
            ),
            key=("ticket_id",),
            description="Support tickets opened by accounts.",
            stamped_by="opened_at",
        ),
        Entity(
            "survey_responses",
            (
                _req("response_id"),
                _req("account_id"),
                _req("responded_at", "timestamp"),
                _req("survey_type", allowed=("nps", "csat", "training_feedback")),
                _req("score", "int"),
                _opt("contact_id"),
                _opt("comment"),
                _opt("training_id"),
            ),
            key=("response_id",),
            description="NPS, CSAT and training feedback responses.",
            stamped_by="responded_at",
        ),
        Entity(
            "trainings",
            (
                _req("training_id"),
                _req("account_id"),
                _req("contact_id"),
                _req("session_date", "date"),
                _req("attended", "bool", staged_as="is_attended"),
                _opt("topic"),
            ),
            # One row per session and invited contact: a session has many attendees.
            key=("training_id", "contact_id"),
            description="Training sessions, one row per invited contact.",
        ),
        Entity(
            "invoices",
            (
                _req("invoice_id"),
                _req("account_id"),
                _req("due_date", "date"),
                _req("amount", "numeric", min_value=0),
                _opt("paid_date", "date"),
            ),
            key=("invoice_id",),
            description="Invoices and when they were paid.",
        ),
    )
}

# Outcomes of firings a CRM may drop in the landing folder (csflow/outcomes.py); not an entity.
OUTCOMES_FILE = "outcomes.csv"

# Load order: accounts first, so every other file is checked against them.
LOAD_ORDER: tuple[str, ...] = tuple(ENTITIES)

# Bookkeeping columns ingest adds to every raw table, and their names in staging.
LOAD_ID = "_load_id"
LINE = "_line"
UNKNOWN_ACCOUNT = "_unknown_account"
STAGED_BOOKKEEPING = {LOAD_ID: "load_id", LINE: "source_line", UNKNOWN_ACCOUNT: "is_unknown_account"}
