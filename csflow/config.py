"""Settings in one place: `csflow.yml`, overridden by environment variables.

Every setting has one name in the file (`database_url`) and one in the
environment (`CSFLOW_DATABASE_URL`). The environment wins, so a deployment can
keep the file in git and inject secrets and per-host values at run time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

# The repository root: dbt_project/, templates/, expectations/ live here.
PROJECT_DIR = Path(__file__).resolve().parent.parent

EMAIL_BACKENDS = ("file", "smtp", "sendgrid")


class ConfigError(ValueError):
    """A setting a user gave is wrong; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    # Warehouse: a SQLAlchemy URL; empty means the embedded PostgreSQL.
    database_url: str = ""
    timezone: str = "Asia/Tokyo"
    landing_dir: Path = Path("landing")
    # Where csflow keeps its own state (embedded pgdata, dbt target, ...).
    state_dir: Path = Path(".csflow")
    email_backend: str = "file"
    outbox_dir: Path = Path("outbox")
    # Internal email (alerts, digests, reports, sign-in links) is from csflow.
    from_email: str = "csflow@example.com"
    from_name: str = "csflow"
    # Customer email is from the company, signed by it, with Reply-To the
    # account's CSM; customer_from_email empty means from_email.
    company_name: str = "Example Co."
    customer_from_email: str = ""
    data_team_email: str = "data-team@example.com"
    # Who receives the weekly KPI report, and the language of internal email.
    leadership_email: str = "leadership@example.com"
    internal_locale: str = "en"
    sendgrid_host: str = "https://api.sendgrid.com"
    sendgrid_asm_group_id: int | None = None
    # Name of the Prefect Secret block holding the key when SENDGRID_API_KEY is unset.
    sendgrid_secret_block: str = "sendgrid-api-key"
    # Client-side timeout of one SMTP or SendGrid call.
    email_timeout_seconds: int = 15
    # Messages in flight at once (each sending slot has its own connection and lock).
    delivery_concurrency: int = 16
    # A sender stops after this many failures of the same kind in a row (a wrong
    # password, an outage) and leaves the rest of the outbox pending.
    delivery_stop_after_failures: int = 5
    # The churn-risk model trains only on a history with at least this many
    # accounts that churned (fewer would publish noise), and validates on the
    # most recent this-many days of labelled history.
    churn_model_min_churners: int = 30
    churn_model_validation_days: int = 90
    # Credentials over plain text (SendGrid over http://, SMTP login without
    # STARTTLS) are refused unless the host is loopback or this is true.
    allow_insecure_transport: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    dbt_threads: int = 4
    # Server-side limit on any one SQL statement of csflow or dbt (0: none), so a
    # stuck query fails its task (which Prefect may retry) instead of hanging the night.
    statement_timeout_seconds: int = 1800
    # How long a pipeline run or ingest waits for another one on the same warehouse.
    run_lock_wait_seconds: int = 600
    playbooks_file: Path = Path("playbooks.yml")
    # Where the CSM workspace (`csflow serve`) is reached from a mail client:
    # links in email (tasks, accounts, outcome buttons, unsubscribe) start here.
    base_url: str = "http://127.0.0.1:8080"
    # Customer email carries <base_url>/unsubscribe/<token>, the token signed with
    # unsubscribe_secret (HMAC-SHA256 over the address). Outside the file backend
    # customer email is held while the secret is the example value or base_url
    # is not a real host.
    unsubscribe_secret: str = field(default="change-me", repr=False)
    # The post-training survey's score links go to the workspace (/survey/<token>),
    # or, when this is set, to an external survey tool whose answers come back in
    # the survey_responses landing file: {contact_id}, {training_id}, {account_id}
    # and {score} are filled in (e.g. https://forms.example.com/t?c={contact_id}&t={training_id}&s={score}).
    survey_url: str = ""
    # Signs sign-in sessions, CSRF tokens and outcome links of the workspace;
    # refused at its example value unless the workspace listens on loopback only.
    workspace_secret: str = field(default="change-me", repr=False)
    # Who sees and reassigns every task and account (team leads), and who reads
    # the KPIs and account pages (leadership); CSMs are the accounts' owner_email.
    team_leads: tuple[str, ...] = ()
    leadership: tuple[str, ...] = ()
    # Behind a single sign-on proxy: the request header that carries the user's
    # address (e.g. X-Forwarded-Email). Empty: sign in by emailed link.
    workspace_trusted_header: str = ""
    # SendGrid's Event Webhook signing key (base64, from SendGrid's settings):
    # posts to /webhooks/sendgrid are verified with it; without it they are refused.
    sendgrid_webhook_public_key: str = ""
    # The file the settings came from, for messages and `csflow doctor`.
    source: str = field(default="defaults", compare=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def uses_embedded_warehouse(self) -> bool:
        return not self.database_url

    def customer_email_refusal(self) -> str | None:
        """Why customer email may not leave with these settings, or None.

        The file backend sends nothing anywhere, so the example values are fine
        there (the demo); any real backend needs links nobody else can forge
        and that point somewhere real.
        """
        from csflow.tokens import DEFAULT_SECRETS

        if self.email_backend == "file":
            return None
        if self.unsubscribe_secret in DEFAULT_SECRETS:
            return (
                f"setting unsubscribe_secret ({env_name('unsubscribe_secret')}) is the example value: "
                "anyone could forge unsubscribe links; set a long random secret"
            )
        if _is_example_url(self.base_url) or is_loopback_url(self.base_url):
            return (
                f"setting base_url ({env_name('base_url')}) is {self.base_url!r}: customers could not reach "
                "its unsubscribe links; point it at your csflow workspace"
            )
        return None

    @property
    def customer_sender(self) -> str:
        return self.customer_from_email or self.from_email

    def link(self, path: str) -> str:
        """An absolute workspace URL for email."""
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"


def is_loopback_host(host: str | None) -> bool:
    """This machine only: credentials or links there never cross a network."""
    import ipaddress

    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    from urllib.parse import urlsplit

    return is_loopback_host(urlsplit(url).hostname)


def _is_example_url(url: str) -> bool:
    """No host, or one of the names reserved for examples (RFC 2606)."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    reserved = ("example", "example.com", "example.org", "example.net")
    return not host or any(host == name or host.endswith("." + name) for name in reserved)


def env_name(setting: str) -> str:
    return f"CSFLOW_{setting.upper()}"


# CSFLOW_ variables that are not settings: the settings file's name, what csflow
# hands dbt and Great Expectations itself, and the test suite's switches.
OTHER_VARIABLES = ("CSFLOW_CONFIG", "CSFLOW_GX_URL", "CSFLOW_BROWSER_TESTS", "CSFLOW_SCREENSHOTS")
OTHER_PREFIXES = ("CSFLOW_DBT_",)


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """A warning per CSFLOW_* variable that no setting reads (a misspelt one is silently ignored otherwise)."""
    import difflib

    environ = dict(os.environ if environ is None else environ)
    known = sorted(env_name(f.name) for f in fields(Settings) if f.name != "source")
    warnings = []
    for name in sorted(environ):
        if not name.startswith("CSFLOW_") or name in known or name in OTHER_VARIABLES:
            continue
        if name.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else "; `csflow doctor` lists the settings"
        warnings.append(f"environment variable {name} is not a csflow setting and is ignored{hint}")
    return warnings


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Turn a YAML or environment value into the type of the default."""
    where = f"setting {name} ({env_name(name)})"
    if value is None or value == "":
        return default if name != "sendgrid_asm_group_id" else None
    if isinstance(default, bool):
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if isinstance(default, int) or name == "sendgrid_asm_group_id":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}") from None
    if isinstance(default, Path):
        return Path(str(value)).expanduser()
    if isinstance(default, tuple):
        items = value if isinstance(value, list | tuple) else str(value).split(",")
        return tuple(str(item).strip() for item in items if str(item).strip())
    return str(value)


def _validate(s: Settings) -> None:
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"setting timezone ({env_name('timezone')}): unknown time zone {s.timezone!r}; "
            "use an IANA name such as Asia/Tokyo or UTC"
        ) from None
    if s.email_backend not in EMAIL_BACKENDS:
        raise ConfigError(
            f"setting email_backend ({env_name('email_backend')}): {s.email_backend!r} "
            f"is not one of {', '.join(EMAIL_BACKENDS)}"
        )
    if s.database_url:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(s.database_url)
        except ArgumentError:
            raise ConfigError(
                f"setting database_url ({env_name('database_url')}): not a SQLAlchemy URL; "
                "expected e.g. postgresql+psycopg2://user@host:5432/dbname"
            ) from None
        if url.get_backend_name() != "postgresql":
            raise ConfigError(
                f"setting database_url ({env_name('database_url')}): csflow needs PostgreSQL, "
                f"got {url.get_backend_name()!r}"
            )
    from csflow.texts import all_texts

    if s.internal_locale not in all_texts():
        raise ConfigError(
            f"setting internal_locale ({env_name('internal_locale')}): {s.internal_locale!r} is not one of "
            f"{', '.join(sorted(all_texts()))}"
        )
    if s.survey_url:
        try:
            s.survey_url.format(contact_id="c", training_id="t", account_id="a", score=0)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"setting survey_url ({env_name('survey_url')}): {s.survey_url!r} has an unknown placeholder "
                f"({exc}); use {{contact_id}}, {{training_id}}, {{account_id}} and {{score}}"
            ) from None
        if not s.survey_url.startswith(("https://", "http://")):
            raise ConfigError(f"setting survey_url ({env_name('survey_url')}): expected an http(s) address")
    for name, low in (
        ("dbt_threads", 1),
        ("delivery_concurrency", 1),
        ("delivery_stop_after_failures", 1),
        ("churn_model_min_churners", 1),
        ("churn_model_validation_days", 7),
    ):
        if getattr(s, name) < low:
            raise ConfigError(f"setting {name} ({env_name(name)}): must be at least {low}")
    if s.delivery_concurrency > 128:
        raise ConfigError(f"setting delivery_concurrency ({env_name('delivery_concurrency')}): at most 128")


def load_settings(config_file: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read csflow.yml (if present) and apply CSFLOW_* environment overrides."""
    environ = dict(os.environ if environ is None else environ)
    if config_file is None:
        named = environ.get("CSFLOW_CONFIG")
        config_file = Path(named) if named else Path("csflow.yml")
    values: dict[str, Any] = {}
    source = "defaults"
    if config_file.exists():
        try:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config_file}: not valid YAML ({exc})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_file}: expected a mapping of setting: value")
        known = {f.name for f in fields(Settings)} - {"source"}
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise ConfigError(
                f"{config_file}: unknown setting {unknown[0]!r}; known settings: {', '.join(sorted(known))}"
            )
        values.update(loaded)
        source = str(config_file)
    elif "CSFLOW_CONFIG" in environ:
        raise ConfigError(f"setting CSFLOW_CONFIG: file {config_file} does not exist")

    kwargs: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name == "source":
            continue
        raw = environ.get(env_name(f.name), values.get(f.name))
        kwargs[f.name] = _coerce(f.name, raw, f.default)
    settings = Settings(**kwargs, source=source)
    _validate(settings)
    return settings
