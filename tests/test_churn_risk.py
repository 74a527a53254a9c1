"""The churn-risk model end to end on generated data: signal history, training, the model card in
ops.model_runs, scores and drivers in marts.churn_risk, what goes with churn in marts.churn_drivers.

The generator plants churn that depends on behaviour (csflow/demo/activity.py:
churners use less and most fade before their contract ends), so a model
trained on its history has something true to find.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from csflow.cli import app
from csflow.config import Settings
from csflow.dbt import run_dbt
from csflow.demo import generate
from csflow.ingest import ingest_folder
from csflow.run_context import write_run_context
from csflow.signals import build_signal_history
from tests.conftest import new_database

AS_OF = date(2026, 3, 31)


@pytest.fixture(scope="module")
def history(server, tmp_path_factory: pytest.TempPathFactory):
    landing = tmp_path_factory.mktemp("churn") / "landing"
    generate(landing, accounts=600, seed=11, as_of=AS_OF)
    with new_database(server) as db:
        settings = Settings(
            database_url=db.url.render_as_string(hide_password=False),
            state_dir=tmp_path_factory.mktemp("churn-state"),
            playbooks_file=Path(__file__).parents[1] / "playbooks.yml",
            churn_model_min_churners=10,
        )
        engine = db.engine()
        ingest_folder(engine, landing)
        write_run_context(engine, AS_OF, "test", settings.timezone)
        run_dbt(db, settings, ["build", "--select", "+marts", "--exclude", "test_type:unit"], use_prefect=False)
        build_signal_history(db, settings, AS_OF - timedelta(days=365), AS_OF)
        # account_health too, on the observation days of the validation window (every 4 weeks back).
        health = build_signal_history(db, settings, AS_OF - timedelta(days=170), AS_OF, with_health=True)
        assert health.health_days == tuple(AS_OF - timedelta(days=28 * k) for k in range(1, 7))
        engine.dispose()
        yield db, settings


def env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        "CSFLOW_DATABASE_URL": settings.database_url,
        "CSFLOW_STATE_DIR": str(settings.state_dir),
        "CSFLOW_PLAYBOOKS_FILE": str(settings.playbooks_file),
        "COLUMNS": "100",
        **extra,
    }


def test_training_publishes_a_card_and_the_nightly_scores_use_it(history) -> None:
    db, settings = history
    runner = CliRunner()
    result = runner.invoke(app, ["model", "train"], env=env(settings, CSFLOW_CHURN_MODEL_MIN_CHURNERS="10"))
    assert result.exit_code == 0, result.output
    assert "AUC" in result.output and "health AUC" in result.output and "Strongest drivers" in result.output

    engine = db.engine()
    with engine.connect() as conn:
        run = conn.execute(sa.text("select * from ops.model_runs where status = 'published'")).mappings().one()
        card = run["card"]
        assert run["train_to"] + timedelta(days=90) < run["validation_from"]  # judged on time it did not see
        assert card["auc"] > 0.6 and card["brier"] < card["brier_base_rate"]
        assert card["health_observations"] > 0 and card["health_auc"] is not None
        # The run context is the latest run's again, and account_health holds the days built.
        assert conn.execute(sa.text("select as_of_date from ops.run_context")).scalar_one() == AS_OF
        health_days = conn.execute(sa.text("select count(distinct as_of_date) from marts.account_health")).scalar_one()
        assert health_days == 7
        scores = conn.execute(sa.text("select * from marts.churn_risk")).mappings().all()
        active = conn.execute(
            sa.text("select count(*) from marts.account_signals_daily where signal_date = :d and days_to_renewal is not null"),
            {"d": AS_OF},
        ).scalar_one()
        drivers = conn.execute(sa.text("select * from marts.churn_drivers")).mappings().all()
    engine.dispose()
    assert len(scores) == active > 0
    assert {s["model_version"] for s in scores} == {run["model_version"]}
    assert all(0 <= s["churn_probability"] < 1 for s in scores)  # rounded to 4 places: the safest read 0.0000
    first = scores[0]
    assert first["driver_1"] and abs(first["driver_1_contribution"]) >= abs(first["driver_2_contribution"])
    assert len(drivers) == len(card["coefficients"]) and all(d["signal_auc"] is not None for d in drivers)

    # A later nightly build scores with the same published model (plain SQL over its parameters).
    run_dbt(db, settings, ["run", "--select", "churn_risk"], use_prefect=False)
    engine = db.engine()
    with engine.connect() as conn:
        again = conn.execute(sa.text("select account_id, churn_probability from marts.churn_risk")).all()
    engine.dispose()
    assert sorted(again) == sorted((s["account_id"], s["churn_probability"]) for s in scores)


def _copy_published_model(conn: sa.Connection, version: str, parameters_sql: str) -> None:
    """A later model run: the published one's row under a new version, its parameters changed."""
    conn.execute(
        sa.text(
            f"""insert into ops.model_runs
                select :version, trained_at + interval '1 hour', as_of_date, status, horizon_days, train_from,
                       train_to, validation_from, validation_to, train_observations, train_churners,
                       validation_observations, validation_churners, card, {parameters_sql}
                from ops.model_runs where status = 'published' order by trained_at desc limit 1"""
        ),
        {"version": version},
    )


def test_a_model_scores_without_features_added_since_and_one_with_unknown_features_is_passed_over(history) -> None:
    db, settings = history
    result = CliRunner().invoke(app, ["model", "train"], env=env(settings, CSFLOW_CHURN_MODEL_MIN_CHURNERS="10"))
    assert result.exit_code == 0, result.output
    engine = db.engine()
    try:
        with engine.begin() as conn:
            # Trained before the per-event-type counts existed: no log_events_login_30d.
            _copy_published_model(conn, "older-features", "parameters #- '{features,log_events_login_30d}'")
        run_dbt(db, settings, ["run", "--select", "int_churn_model_latest", "churn_risk"], use_prefect=False)
        with engine.connect() as conn:
            scored = conn.execute(sa.text("select distinct model_version from marts.churn_risk")).scalars().all()
            drivers = conn.execute(
                sa.text("select driver_1, driver_2, driver_3 from marts.churn_risk")
            ).all()
        assert scored == ["older-features"]
        assert all("log_events_login_30d" not in row for row in drivers)

        with engine.begin() as conn:
            # A model using a signal this project does not compute cannot be scored: the one before it is used.
            _copy_published_model(
                conn,
                "unknown-feature",
                """jsonb_set(parameters, '{features,log_seats_30d}', '{"weight": 1, "mean": 0, "scale": 1}')""",
            )
            conn.execute(
                sa.text("update ops.model_runs set trained_at = trained_at + interval '2 hours' where model_version = 'unknown-feature'")
            )
        run_dbt(db, settings, ["run", "--select", "int_churn_model_latest", "churn_risk"], use_prefect=False)
        with engine.connect() as conn:
            scored = conn.execute(sa.text("select distinct model_version from marts.churn_risk")).scalars().all()
        assert scored == ["older-features"]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("delete from ops.model_runs where model_version in ('older-features', 'unknown-feature')"))
        engine.dispose()
        run_dbt(db, settings, ["run", "--select", "int_churn_model_latest", "churn_risk"], use_prefect=False)


def test_too_few_churners_is_said_and_nothing_new_is_published(history) -> None:
    db, settings = history
    result = CliRunner().invoke(app, ["model", "train"], env=env(settings, CSFLOW_CHURN_MODEL_MIN_CHURNERS="100000"))
    assert result.exit_code == 1
    assert "at least 100000 (setting churn_model_min_churners)" in result.output
    engine = db.engine()
    with engine.connect() as conn:
        statuses = conn.execute(sa.text("select status, parameters is null from ops.model_runs")).all()
    engine.dispose()
    assert ("too_few_churners", True) in statuses


def test_the_churn_risk_play_ships_off_and_once_on_names_the_drivers(history, tmp_path: Path) -> None:
    import yaml

    from csflow.playbooks import load_playbooks, run_playbooks
    from csflow.render import Renderer

    db, settings = history
    shipped = load_playbooks(settings.playbooks_file, Renderer())
    assert [p.enabled for p in shipped.playbooks if p.name == "churn_risk_high"] == [False]

    CliRunner().invoke(app, ["model", "train"], env=env(settings, CSFLOW_CHURN_MODEL_MIN_CHURNERS="10"))
    data = yaml.safe_load(settings.playbooks_file.read_text(encoding="utf-8"))
    for play in data["playbooks"]:
        play["enabled"] = play["name"] == "churn_risk_high"
    turned_on = tmp_path / "playbooks.yml"
    turned_on.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    engine = db.engine()
    run_dbt(db, settings, ["run", "--select", "audience_churn_risk_high"], use_prefect=False)
    results = run_playbooks(engine, dataclasses.replace(settings, playbooks_file=turned_on), AS_OF, gate_open=True)
    with engine.connect() as conn:
        audience = conn.execute(sa.text("select count(*) from marts.audience_churn_risk_high")).scalar_one()
        bodies = conn.execute(sa.text("select text_body from ops.outbox where playbook = 'churn_risk_high'")).scalars().all()
    engine.dispose()
    assert [r.playbook for r in results] == ["churn_risk_high"]
    assert audience > 0 and len(bodies) == audience
    assert all("What moves it most:" in body and "the risk" in body for body in bodies)
    assert any("renewal within 90 days: high, which raises the risk" in body for body in bodies)
    assert any("usage in the last 30 days: low, which raises the risk" in body for body in bodies)


def test_the_kpis_page_shows_the_card_and_the_account_page_the_drivers(history, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from csflow.texts import all_texts
    from csflow.web import create_app

    db, settings = history
    CliRunner().invoke(app, ["model", "train"], env=env(settings, CSFLOW_CHURN_MODEL_MIN_CHURNERS="10"))
    lead = "lead@cs.example.org"
    site = dataclasses.replace(
        settings,
        workspace_secret="workspace-secret-for-tests-0123456789",
        workspace_trusted_header="X-Forwarded-Email",
        team_leads=(lead,),
        leadership=(lead,),
        outbox_dir=tmp_path / "outbox",
    )
    engine = db.engine()
    with engine.connect() as conn:
        risky = conn.execute(sa.text("select * from marts.churn_risk order by churn_probability desc limit 1")).mappings().one()
        coefficients = conn.execute(sa.text("select card -> 'coefficients' from ops.model_runs where status = 'published'")).scalar_one()
        features = list(coefficients)
    browser = TestClient(create_app(site, engine), follow_redirects=False)
    kpis = browser.get("/kpis", headers={"X-Forwarded-Email": lead})
    assert kpis.status_code == 200 and "Churn-risk model" in kpis.text and "AUC (0.5 is a coin)" in kpis.text
    strongest = max(features, key=lambda name: abs(coefficients[name]))
    assert all_texts()["en"][f"driver_{strongest}"] in kpis.text.split("Strongest drivers")[1].split("</li>")[0]
    page = browser.get(f"/accounts/{risky['account_id']}", headers={"X-Forwarded-Email": lead})
    engine.dispose()
    assert page.status_code == 200 and "Churn risk" in page.text
    assert f"{float(risky['churn_probability']) * 100:.0f}%" in page.text
    # The weekly KPI report carries the card too.
    from csflow.digests import kpi_report
    from csflow.render import Renderer

    engine = db.engine()
    with engine.connect() as conn:
        report = kpi_report(conn, site, AS_OF, Renderer())
    engine.dispose()
    assert "\nChurn-risk model: churn-20260331-" in report.text_body and "(0.5 is a coin)" in report.html_body
    assert "\n* partial month" in report.text_body
    # Every feature the model may name has words in every locale the pages speak.
    for locale, texts in all_texts().items():
        assert all(f"driver_{name}" in texts for name in features), locale


def test_the_health_score_is_backtested_like_a_play(history) -> None:
    db, settings = history
    runner = CliRunner()
    args = ["backtest", "--play", "health_score", "--horizon", "90"]
    first, last = AS_OF - timedelta(days=170), AS_OF - timedelta(days=90)
    result = runner.invoke(app, [*args, "--from", str(first), "--to", str(last)], env=env(settings))
    assert result.exit_code == 0, result.output
    assert "Median monthly AUC" in result.output and "days before their contract ended" in result.output
    engine = db.engine()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select month, firings, churned, auc from marts.play_backtests where playbook = 'health_score' order by month")
        ).mappings().all()
    engine.dispose()
    # account_health was built every 4 weeks back from AS_OF: 2025-10-14, 2025-11-11 and 2025-12-09 fall in the range.
    observed = [r for r in rows if r["firings"]]
    assert [r["month"].month for r in observed] == [10, 11, 12]
    assert all(r["auc"] is None or 0 <= r["auc"] <= 1 for r in observed)
    assert (settings.state_dir.resolve() / "reports" / "backtest-health_score.html").is_file()

    # Other weights re-weigh the stored components; the configured weight gives the configured AUC.
    varied = runner.invoke(
        app, [*args, "--set", "health_weight_usage_trend=0,0.25", "--from", str(first), "--to", str(last)], env=env(settings)
    )
    assert varied.exit_code == 0, varied.output
    engine = db.engine()
    with engine.connect() as conn:
        aucs = dict(
            conn.execute(
                sa.text(
                    "select setting || ' ' || month, auc from marts.play_backtests "
                    "where playbook = 'health_score' and firings > 0"
                )
            ).all()
        )
    engine.dispose()
    for month in {k.split(" ")[1] for k in aucs}:
        configured, same = aucs[f"configured {month}"], aucs[f"health_weight_usage_trend=0.25 {month}"]
        assert configured is None or abs(configured - same) < 0.005
    wrong = runner.invoke(app, [*args, "--set", "usage_decline_min_drop=0.5", "--from", str(first), "--to", str(last)], env=env(settings))
    assert wrong.exit_code == 1 and "health_weight_*" in wrong.output
    none = runner.invoke(app, [*args, "--from", "2025-04-01", "--to", "2025-04-20"], env=env(settings))
    assert none.exit_code == 1 and "--with-health" in none.output
