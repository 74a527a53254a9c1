"""The csflow command: help, exit codes, one-line errors (no tracebacks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from csflow.cli import app
from tests.conftest import write_csv

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "run", "ingest", "generate", "doctor"):
        assert command in result.output


@pytest.fixture
def cli_env(warehouse, settings_for, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    settings = settings_for(warehouse)
    monkeypatch.setenv("CSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CSFLOW_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("CSFLOW_PLAYBOOKS_FILE", str(Path(__file__).parents[1] / "playbooks.yml"))
    monkeypatch.chdir(tmp_path)
    return settings


def test_ingest_exits_non_zero_only_for_unusable_files(cli_env, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    write_csv(land, "accounts.csv", "account_id,account_name,owner_email,created_date\nA1,One,a@x.com,2024-13-01")
    result = runner.invoke(app, ["ingest", str(land)])
    assert result.exit_code == 0, result.output
    assert "accounts.csv" in result.output

    write_csv(land, "contacts.csv", "who,what\n1,2")
    result = runner.invoke(app, ["ingest", str(land)])
    assert result.exit_code == 1
    assert "header lacks required column(s) contact_id" in result.output


def test_generate_writes_the_landing_files(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = runner.invoke(app, ["generate", "--accounts", "20", "--seed", "1", "--as-of", "2026-03-31", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "accounts.csv").exists() and (out / "usage_events.csv").exists()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["ingest", "/no/such/folder"], {}, "landing folder /no/such/folder does not exist"),
        (["doctor"], {"CSFLOW_TIMEZONE": "Nowhere/Land"}, "setting timezone (CSFLOW_TIMEZONE)"),
        (
            ["doctor"],
            {"CSFLOW_DATABASE_URL": "postgresql+psycopg2://nobody@127.0.0.1:1/none"},
            "setting database_url (CSFLOW_DATABASE_URL): cannot connect",
        ),
        (["generate", "--as-of", "31/03/2026", "--out", "x"], {}, "as_of: '31/03/2026' is not a date"),
        (
            ["serve", "--host", "0.0.0.0"],
            {},
            "setting workspace_secret (CSFLOW_WORKSPACE_SECRET) is the example value: anyone could forge",
        ),
        (  # on loopback, but behind a proxy that the world reaches
            ["serve"],
            {"CSFLOW_BASE_URL": "https://cs.acme-saas.co.jp", "CSFLOW_WORKSPACE_SECRET": "a-long-random-secret-0123456789"},
            "setting unsubscribe_secret (CSFLOW_UNSUBSCRIBE_SECRET) is the example value",
        ),
    ],
)
def test_user_errors_are_one_line(
    args: list[str], env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_doctor_reports_the_warehouse(cli_env) -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "PostgreSQL 18" in text
    assert "file backend" in text


def test_doctor_catches_common_set_up_mistakes(cli_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    write_csv(land, "acounts.csv", "account_id\nA1")  # a misspelt contract file
    playbooks = tmp_path / "playbooks.yml"
    playbooks.write_text(
        "playbooks:\n  - name: x\n    audience: a\n    rules:\n      - channel: csm_alert\n"
        "        recipients: [owner_csm]\n        template: renewal_alret_csm\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CSFLOW_LANDING_DIR", str(land))
    monkeypatch.setenv("CSFLOW_PLAYBOOKS_FILE", str(playbooks))
    monkeypatch.setenv("CSFLOW_EMAIL_BACKEND", "sendgrid")
    monkeypatch.setenv("CSFLOW_DATA_TEAM_EMAIL", "data-team")
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("CSFLOW_BASE_URL", "https://cs.acme-saas.co.jp")
    monkeypatch.setenv("CSFLOW_TEAM_LEADS", "lead@acme-saas.co.jp, team-lead")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    errors = [" ".join(line.split()) for line in result.stderr.splitlines() if line.startswith("csflow:")]
    assert any("no template templates/renewal_alret_csm" in e for e in errors), errors
    assert any("'data-team' is not exactly one email address" in e and "(setting data_team_email, CSFLOW_DATA_TEAM_EMAIL)" in e for e in errors)
    # Customer email outside the file backend needs a real secret and a real link.
    assert any("customer email is held: setting unsubscribe_secret (CSFLOW_UNSUBSCRIBE_SECRET) is the example value" in e for e in errors)
    assert any("set SENDGRID_API_KEY or create a Prefect Secret block" in e for e in errors)
    assert any("PREFECT_API_URL http://127.0.0.1:9/api does not answer" in e for e in errors)
    # The workspace: links leave this machine, so its secret must be real; leads must be addresses.
    assert any("setting workspace_secret (CSFLOW_WORKSPACE_SECRET) is the example value" in e for e in errors), errors
    assert any("setting team_leads (CSFLOW_TEAM_LEADS): 'team-lead' is not" in e for e in errors), errors
    # Warnings do not fail the command; the table shows them (checked here without its wrapping).
    from csflow.config import load_settings
    from csflow.doctor import check_email, check_landing, check_workspace

    settings = load_settings()
    landing = check_landing(settings)
    assert landing.status == "warn" and "not part of the contract (check the names): acounts.csv" in landing.detail
    assert not any(c.name == "unsubscribe" and c.status == "ok" for c in check_email(settings))
    webhook = next(c for c in check_workspace(settings) if c.name == "SendGrid events")
    assert webhook.status == "warn" and "refuses every post" in webhook.detail


def test_serve_needs_marts_first(cli_env) -> None:
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "has no marts yet: run `csflow run` (or `csflow demo`) first" in " ".join(result.output.split())


def playbooks_with(tmp_path: Path, old: str, new: str) -> Path:
    """The project's playbooks.yml with one mistake made in it."""
    text = (Path(__file__).parents[1] / "playbooks.yml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "mistaken-playbooks.yml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("args", "mistake", "message"),
    [
        (["run", "--landing-dir", "/typo"], None, "landing folder /typo does not exist (option --landing-dir"),
        (["run", "--as-of", "2026-13-01"], None, "as_of: '2026-13-01' is not a date like 2026-03-31"),
        (
            ["run"],
            ("audience: audience_usage_decline", "audience: audience_usage_declin"),
            "playbook usage_decline: audience 'audience_usage_declin' is not a dbt model in dbt_project/models/marts",
        ),
        (
            ["run"],
            ("when: {priority: [high, medium]}", "when: {prority: [high, medium]}"),
            "playbook renewal_alert, rule #1: when: audience_renewal_alert has no column 'prority'",
        ),
        (["run"], ("channel: csm_alert", "channel: csm_alrt"), "channel 'csm_alrt' is not one of"),
    ],
)
def test_run_checks_the_set_up_before_it_loads_anything(
    args: list[str], mistake: tuple[str, str] | None, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One line, exit 1, and nothing started: no embedded warehouse, no Prefect."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "landing").mkdir()
    if mistake:
        monkeypatch.setenv("CSFLOW_PLAYBOOKS_FILE", str(playbooks_with(tmp_path, *mistake)))
    else:
        monkeypatch.setenv("CSFLOW_PLAYBOOKS_FILE", str(Path(__file__).parents[1] / "playbooks.yml"))
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) <= 3 and message in " ".join(result.output.split()), result.output
    assert not (tmp_path / ".csflow").exists()  # the warehouse was never started


def test_doctor_checks_the_audiences_against_the_dbt_project(cli_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mistaken = playbooks_with(tmp_path, "when: {touch_tier: [high_touch]}", "when: {touch_teir: [high_touch]}")
    monkeypatch.setenv("CSFLOW_PLAYBOOKS_FILE", str(mistaken))
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "when: audience_renewal_alert has no column 'touch_teir'" in " ".join(result.output.split())


def test_a_misspelt_variable_is_warned_about(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CSFLOW_EMAL_BACKEND", "smtp")
    result = runner.invoke(app, ["generate", "--accounts", "3", "--as-of", "2026-03-31", "--out", "x"])
    assert result.exit_code == 0
    assert (
        "environment variable CSFLOW_EMAL_BACKEND is not a csflow setting and is ignored; "
        "did you mean CSFLOW_EMAIL_BACKEND?" in " ".join(result.stderr.split())
    )


def test_sql_queries_the_warehouse_as_a_table_csv_or_psql(cli_env) -> None:
    import subprocess
    import sys

    table = runner.invoke(app, ["sql", "select 'ACC-000123' as account_id, date '2026-03-31' as as_of, 42 as n"])
    assert table.exit_code == 0, table.output
    assert "ACC-000123" in table.output and "2026-03-31" in table.output and "1 row(s)" in table.output
    as_csv = runner.invoke(app, ["sql", "--csv", "select n from generate_series(1, 300) n"])
    assert as_csv.exit_code == 0 and as_csv.stdout.splitlines()[:2] == ["n", "1"] and len(as_csv.stdout.splitlines()) == 301
    wrong = runner.invoke(app, ["sql", "select * from marts.no_such_mart"])
    assert wrong.exit_code == 1 and "no_such_mart" in wrong.output and "Traceback" not in wrong.output
    # Without a query: psql on the same warehouse (here fed from a pipe, as a script would).
    csflow = Path(sys.executable).parent / "csflow"
    prompt = subprocess.run(
        [str(csflow), "sql"], input="select 6 * 7 as answer;\n", capture_output=True, text=True, timeout=60
    )
    assert prompt.returncode == 0, prompt.stderr
    assert "answer" in prompt.stdout and "42" in prompt.stdout


def test_docs_builds_one_html_file_that_opens_from_disk(cli_env) -> None:
    result = runner.invoke(app, ["docs"])
    assert result.exit_code == 0, result.output
    page = cli_env.state_dir.resolve() / "docs" / "dbt.html"
    assert "dbt docs:" in result.output and page.is_file()
    html = page.read_text(encoding="utf-8")
    # The static page carries the project's manifest and catalog inline (it opens from file://).
    assert "model.csflow.account_health" in html and "model.csflow.audience_renewal_alert" in html


def test_the_commands_the_readme_suggests_after_the_demo(
    built_marts, fired, marts_engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """digest, send, outbox (--status, --resolve, --requeue-failed) and outcome --file, as README.md shows them."""
    import sqlalchemy as sa

    _, settings = built_marts
    monkeypatch.setenv("CSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CSFLOW_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("CSFLOW_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("CSFLOW_PLAYBOOKS_FILE", str(Path(__file__).parents[1] / "playbooks.yml"))
    monkeypatch.chdir(tmp_path)

    digest = runner.invoke(app, ["digest", "--as-of", "2026-03-31"])
    assert digest.exit_code == 0, digest.output
    assert "CSM digest(s) built" in " ".join(digest.output.split()) and "KPI report:" in digest.output
    sent = runner.invoke(app, ["send"])
    assert sent.exit_code == 0, sent.output
    assert (tmp_path / "outbox" / "index.html").is_file()
    with marts_engine.begin() as conn:
        first, second = conn.execute(
            sa.text("select message_id from ops.outbox where status = 'sent' order by message_id limit 2")
        ).scalars()
        conn.execute(sa.text("update ops.outbox set status = 'failed', last_error = 'HTTP 401' where message_id = :id"), {"id": first})
        conn.execute(sa.text("update ops.outbox set status = 'unknown', last_error = 'read timeout' where message_id = :id"), {"id": second})

    def words(result) -> str:
        return " ".join(result.output.split())

    unknown = runner.invoke(app, ["outbox", "--status", "unknown"])
    assert unknown.exit_code == 0 and "unknown: 1" in words(unknown), unknown.output
    resolved = runner.invoke(app, ["outbox", "--resolve", str(second), "cancelled"])
    assert resolved.exit_code == 0 and f"message {second} marked cancelled" in words(resolved), resolved.output
    requeued = runner.invoke(app, ["outbox", "--requeue-failed"])
    assert requeued.exit_code == 0 and "1 failed message(s) back to pending" in words(requeued), requeued.output
    assert runner.invoke(app, ["send"]).exit_code == 0
    assert "failed: 0" in words(runner.invoke(app, ["outbox", "--status", "failed"]))

    action = fired[0]["action_id"]
    outcomes = write_csv(tmp_path, "outcomes.csv", f"action_id,outcome\n{action},won\n{action},maybe")
    imported = runner.invoke(app, ["outcome", "--file", str(outcomes)])
    assert imported.exit_code == 1  # one row rejected
    assert "1 outcome(s) recorded" in words(imported) and "outcomes.csv:3:" in " ".join(imported.stderr.split())


def test_backfill_checks_the_range_then_runs_its_flow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The command's own layer; the flow it starts runs for real in test_run_pipeline.py."""
    from datetime import date

    import flows.backfill

    monkeypatch.chdir(tmp_path)
    calls: list[dict] = []

    def flow(**kwargs: object) -> list[dict]:
        calls.append(kwargs)
        return [{"as_of": "2026-03-01", "gate_open": True, "fired": 3, "held_past_date": 2, "sent": 1, "seconds": 1.5}]

    monkeypatch.setattr(flows.backfill, "backfill", flow)
    result = runner.invoke(app, ["backfill", "2026-03-01", "2026-03-31", "--landing-dir", "landing/"])
    assert result.exit_code == 0, result.output
    assert calls == [
        {"start": date(2026, 3, 1), "end": date(2026, 3, 31), "landing_dir": "landing", "fire_past_dates": False}
    ]
    assert "Backfill" in result.output and "2026-03-01" in result.output

    backwards = runner.invoke(app, ["backfill", "2026-03-31", "2026-03-01"])
    assert backwards.exit_code == 1 and "start 2026-03-31 is after end 2026-03-01" in backwards.output
    assert len(calls) == 1
