"""`csflow doctor`: the set-up mistakes people actually make, checked in one go.

Each check returns a Check: ok, warn (works, but probably not what you want)
or fail (a run would fail). Checks never change anything, except that the
embedded warehouse is started to see that it starts.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from csflow.addresses import WHAT, is_address
from csflow.config import ConfigError, Settings, env_name, unknown_variables

if TYPE_CHECKING:
    from csflow.playbooks import PlaybookConfig


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


def check_warehouse(settings: Settings) -> list[Check]:
    import sqlalchemy as sa

    from csflow.schema import current_revision, head_revision
    from csflow.warehouse import open_warehouse, server_version

    try:
        with open_warehouse(settings, check_schema=False) as warehouse, warehouse.connected() as engine:
            version = server_version(engine)
            revision = current_revision(engine)
            with engine.connect() as conn:
                schemas = (
                    conn.execute(
                        sa.text(
                            "select nspname from pg_namespace where nspname in ('raw', 'staging', 'marts', 'ops') order by 1"
                        )
                    )
                    .scalars()
                    .all()
                )
    except ConfigError as exc:
        return [Check("warehouse", "fail", str(exc))]
    where = warehouse.display + ("" if warehouse.embedded else f" (from {env_name('database_url')} / database_url)")
    checks = [Check("warehouse", "ok", f"{where}, PostgreSQL {version // 10000}.{version % 10000}")]
    head = head_revision()
    if revision == head:
        checks.append(Check("tables", "ok", f"csflow's tables at revision {head}"))
    elif revision is None and "ops" not in schemas and "raw" not in schemas:
        checks.append(Check("tables", "ok", "a new warehouse: the first command that writes creates csflow's tables"))
    else:
        checks.append(
            Check(
                "tables",
                "fail",
                f"csflow's tables are at revision {revision or 'from before migrations'}, "
                f"this csflow needs {head}: run `csflow migrate`",
            )
        )
    if "marts" not in schemas:
        checks.append(Check("marts", "warn", "no marts yet: run `csflow run` (or `csflow demo`) once"))
    else:
        checks.append(Check("schemas", "ok", ", ".join(schemas)))
    return checks


def check_landing(settings: Settings) -> Check:
    from csflow.contract import ENTITIES
    from csflow.ingest import FileUnusable, find_landing_files

    setting = f"setting landing_dir ({env_name('landing_dir')})"
    try:
        found, ignored = find_landing_files(settings.landing_dir)
    except FileNotFoundError:
        return Check("landing folder", "warn", f"{settings.landing_dir} does not exist ({setting})")
    except FileUnusable as exc:
        return Check("landing folder", "fail", str(exc))
    detail = f"{settings.landing_dir}: {len(found)} of {len(ENTITIES)} contract files"
    missing = [e for e in ENTITIES if e not in found]
    if missing:
        detail += f"; absent: {', '.join(missing)}"
    if ignored:
        detail += f"; not part of the contract (check the names): {', '.join(ignored)}"
    return Check("landing folder", "warn" if ignored or "accounts" not in found else "ok", detail)


def checked_playbooks(settings: Settings) -> PlaybookConfig:
    """playbooks.yml, checked against the templates and the dbt project (audiences and their
    columns); ConfigError names the file, the play and the mistake."""
    from csflow.dbt import mart_models
    from csflow.playbooks import check_audiences, load_playbooks
    from csflow.render import Renderer

    config = load_playbooks(settings.playbooks_file, Renderer())
    check_audiences(config, settings.playbooks_file, mart_models())
    return config


def preflight(settings: Settings, landing: Path | None) -> None:
    """What a run checks before it loads anything (one line, ConfigError): the playbooks and,
    when it will ingest, that the landing folder exists."""
    checked_playbooks(settings)
    if landing is not None and not landing.is_dir():
        raise ConfigError(
            f"landing folder {landing} does not exist (option --landing-dir, setting landing_dir, "
            f"{env_name('landing_dir')})"
        )


def check_playbooks(settings: Settings) -> Check:
    try:
        config = checked_playbooks(settings)
    except ConfigError as exc:
        return Check("playbooks", "fail", str(exc))
    return Check("playbooks", "ok", f"{settings.playbooks_file}: {', '.join(p.name for p in config.playbooks)}")


def check_email(settings: Settings) -> list[Check]:
    from csflow.mailers import refuse_clear_text_credentials, sendgrid_api_key

    checks = []
    for name in ("from_email", "data_team_email", "leadership_email"):
        value = getattr(settings, name)
        if not is_address(value):
            checks.append(Check(name, "fail", f"{value!r} is not {WHAT} (setting {name}, {env_name(name)})"))
    backend = settings.email_backend
    if backend == "file":
        checks.append(
            Check("email", "ok", f"file backend: messages are written to {settings.outbox_dir}, nothing leaves")
        )
    elif backend == "sendgrid":
        try:
            key = sendgrid_api_key(settings)
            source = (
                "SENDGRID_API_KEY"
                if os.environ.get("SENDGRID_API_KEY")
                else f"Secret block {settings.sendgrid_secret_block!r}"
            )
            status = "ok" if key.startswith("SG.") else "warn"
            note = "" if status == "ok" else "; SendGrid keys start with 'SG.'"
            checks.append(Check("email", status, f"sendgrid at {settings.sendgrid_host}, key from {source}{note}"))
        except ConfigError as exc:
            checks.append(Check("email", "fail", str(exc)))
    else:
        try:
            with socket.create_connection((settings.smtp_host, settings.smtp_port), timeout=5):
                pass
            checks.append(Check("email", "ok", f"smtp {settings.smtp_host}:{settings.smtp_port} answers"))
        except OSError as exc:
            checks.append(
                Check(
                    "email",
                    "fail",
                    f"smtp {settings.smtp_host}:{settings.smtp_port} unreachable ({exc}); settings smtp_host, smtp_port",
                )
            )
    try:
        refuse_clear_text_credentials(settings)
    except ConfigError as exc:
        checks.append(Check("transport", "fail", str(exc)))
    refusal = settings.customer_email_refusal()
    checks.append(
        Check("unsubscribe", "fail", f"customer email is held: {refusal}")
        if refusal
        else Check("unsubscribe", "ok", f"links to {settings.link('unsubscribe')}/<token>, signed")
    )
    return checks


def check_workspace(settings: Settings) -> list[Check]:
    """base_url (where links in email lead), the secrets, who the leads are, the webhook's key."""
    from urllib.parse import urlsplit

    from csflow.config import is_loopback_url
    from csflow.tokens import DEFAULT_SECRETS

    checks = []
    setting = f"setting base_url ({env_name('base_url')})"
    url = urlsplit(settings.base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        checks.append(Check("base_url", "fail", f"{setting} {settings.base_url!r} is not an http(s) address"))
    elif is_loopback_url(settings.base_url):
        checks.append(
            Check("base_url", "warn", f"{settings.base_url}: links in email open on this machine only (fine for a trial)")
        )
    elif url.scheme != "https":
        checks.append(
            Check("base_url", "warn", f"{setting} is not https: sign-in links and sessions would cross the network in clear")
        )
    else:
        checks.append(Check("base_url", "ok", f"links in email lead to {settings.base_url}"))
    for name in ("workspace_secret", "unsubscribe_secret"):
        if getattr(settings, name) in DEFAULT_SECRETS:
            local = is_loopback_url(settings.base_url)
            checks.append(
                Check(
                    name,
                    "warn" if local else "fail",
                    f"setting {name} ({env_name(name)}) is the example value: anyone could forge links"
                    + ("; fine while the workspace serves this machine only" if local else "; set a long random secret"),
                )
            )
        elif len(getattr(settings, name)) < 16:
            checks.append(Check(name, "warn", f"setting {name} is short: use 32 random characters or more"))
        else:
            checks.append(Check(name, "ok", "set"))
    people = {"team_leads": settings.team_leads, "leadership": settings.leadership}
    for name, addresses in people.items():
        bad = [a for a in addresses if not is_address(a)]
        if bad:
            checks.append(Check(name, "fail", f"setting {name} ({env_name(name)}): {bad[0]!r} is not {WHAT}"))
    if not any(people.values()):
        checks.append(
            Check("workspace people", "warn", "no team_leads or leadership: nobody can reassign tasks or read /kpis")
        )
    else:
        checks.append(Check("workspace people", "ok", f"{len(settings.team_leads)} team lead(s), {len(settings.leadership)} in leadership"))
    if settings.workspace_trusted_header:
        checks.append(
            Check(
                "sign-in",
                "ok",
                f"the proxy's {settings.workspace_trusted_header} header names the user: serve on 127.0.0.1 behind it only",
            )
        )
    if settings.email_backend == "sendgrid":
        checks.append(_check_webhook_key(settings.sendgrid_webhook_public_key))
    return checks


def _check_webhook_key(key: str) -> Check:
    if not key:
        return Check(
            "SendGrid events",
            "warn",
            f"no sendgrid_webhook_public_key ({env_name('sendgrid_webhook_public_key')}): /webhooks/sendgrid refuses "
            "every post; bounces and unsubscribes reach csflow only as the suppressions pulled before each send",
        )
    from sendgrid.helpers.eventwebhook import EventWebhook

    try:
        EventWebhook(key)
    except (ValueError, TypeError) as exc:
        return Check("SendGrid events", "fail", f"sendgrid_webhook_public_key is not a base64 public key ({exc})")
    return Check("SendGrid events", "ok", "signed posts to /webhooks/sendgrid are verified")


def check_prefect(settings: Settings, project_dir: Path) -> list[Check]:
    checks = []
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        checks.append(Check("Prefect", "ok", "no PREFECT_API_URL: flows run with a temporary local server"))
    else:
        import httpx

        try:
            httpx.get(api.rstrip("/") + "/health", timeout=5).raise_for_status()
            checks.append(Check("Prefect", "ok", f"API {api} answers"))
        except httpx.HTTPError as exc:
            checks.append(
                Check("Prefect", "fail", f"PREFECT_API_URL {api} does not answer ({exc}); start `prefect server start`")
            )
        if not os.environ.get("CSFLOW_PROJECT_DIR"):
            checks.append(
                Check("deployments", "warn", "CSFLOW_PROJECT_DIR is unset: deployed flows will not find this checkout")
            )
    manifest = project_dir / "prefect.yaml"
    if manifest.exists():
        zones = {
            s.get("timezone")
            for d in (yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}).get("deployments") or []
            for s in d.get("schedules") or []
        }
        other = sorted(z for z in zones if z and z != settings.timezone)
        if other:
            checks.append(
                Check(
                    "schedules",
                    "warn",
                    f"prefect.yaml schedules run in {', '.join(other)} but timezone is {settings.timezone}",
                )
            )
    return checks


def run_checks(settings: Settings, project_dir: Path) -> list[Check]:
    from csflow.dbt import DBT_PROJECT_DIR

    checks = [Check("settings", "ok", settings.source)]
    checks += [Check("environment", "warn", warning) for warning in unknown_variables()]
    checks += check_warehouse(settings)
    dbt_ok = (DBT_PROJECT_DIR / "dbt_project.yml").exists() and (DBT_PROJECT_DIR / "profiles.yml").exists()
    checks.append(
        Check(
            "dbt",
            "ok" if dbt_ok else "fail",
            f"project {DBT_PROJECT_DIR}" if dbt_ok else f"no dbt project at {DBT_PROJECT_DIR}",
        )
    )
    checks.append(check_landing(settings))
    checks.append(check_playbooks(settings))
    checks += check_email(settings)
    checks += check_workspace(settings)
    checks.append(Check("time zone", "ok", settings.timezone))
    checks += check_prefect(settings, project_dir)
    return checks
