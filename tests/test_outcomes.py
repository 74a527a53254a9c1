"""Outcomes and effectiveness: `csflow outcome`, outcomes.csv imports with
rejects, order attribution and the playbook_effectiveness mart."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from csflow.casting import EXPECTED
from csflow.cli import app
from csflow.dbt import dbt_var, run_dbt
from csflow.outcomes import import_outcomes, set_outcome
from tests.conftest import write_csv

AS_OF = date(2026, 3, 31)
runner = CliRunner()


def outcome_of(engine: sa.Engine, action_id: int) -> tuple[str | None, str | None]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(
                sa.text("select outcome, outcome_note from ops.playbook_actions where action_id = :id"),
                {"id": action_id},
            ).one()
        )


def test_the_outcome_command_records_and_names_bad_input(built_marts, fired, marts_engine, monkeypatch) -> None:
    db, settings = built_marts
    monkeypatch.setenv("CSFLOW_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CSFLOW_STATE_DIR", str(settings.state_dir))
    action = fired[0]["action_id"]
    result = runner.invoke(app, ["outcome", str(action), "won", "--note", "upgraded to Pro"])
    assert result.exit_code == 0, result.output
    assert outcome_of(marts_engine, action) == ("won", "upgraded to Pro")

    result = runner.invoke(app, ["outcome", str(action), "maybe"])
    assert result.exit_code == 1
    assert "outcome 'maybe' is not one of won, lost, no_response" in result.output
    result = runner.invoke(app, ["outcome", "999999", "lost"])
    assert result.exit_code == 1 and "action 999999: no such firing" in result.output
    assert outcome_of(marts_engine, action) == ("won", "upgraded to Pro")


def test_an_outcomes_file_records_good_rows_and_rejects_bad_ones_with_reasons(
    fired, marts_engine, tmp_path: Path
) -> None:
    a, b, c = (f["action_id"] for f in fired[:3])
    path = write_csv(
        tmp_path,
        "outcomes.csv",
        f"""action_id,outcome,note,recorded_at
        {a},won,signed,2026-04-02T10:00:00+09:00
        {b},LOST,,
        x7,won,,
        {c},perhaps,,
        999999,won,,
        {c},no_response,first call,
        {c},no_response,second call,
        {a},won,signed,yesterday
        """,
    )
    report = import_outcomes(marts_engine, path)
    assert report.rejects == [
        (4, "action_id 'x7': expected a whole number"),
        (5, "outcome 'perhaps': not one of won, lost, no_response, in_progress"),
        (6, "action_id 999999: no such firing"),
        (7, f"action_id {c} appears again on line 8"),
        (9, f"recorded_at 'yesterday': expected {EXPECTED['timestamp']}"),
    ]
    assert report.recorded == 3
    assert outcome_of(marts_engine, a) == ("won", "signed")
    assert outcome_of(marts_engine, b) == ("lost", None)
    assert outcome_of(marts_engine, c) == ("no_response", "second call")
    # Importing the same file again changes nothing.
    again = import_outcomes(marts_engine, path)
    assert (again.recorded, again.unchanged) == (0, 3)

    bad_header = write_csv(tmp_path, "wrong.csv", "id,result\n1,won")
    with pytest.raises(ValueError, match=r"wrong.csv: header must name action_id, outcome"):
        import_outcomes(marts_engine, bad_header)


def test_effectiveness_counts_outcomes_and_attributes_the_orders_that_follow(built_marts, fired, marts_engine) -> None:
    db, settings = built_marts
    alert = next(f for f in fired if f["playbook"] == "usage_decline")
    other = next(f for f in fired if f["playbook"] == "usage_decline" and f["account_id"] != alert["account_id"])
    accounts = [alert["account_id"], other["account_id"]]
    window = int(dbt_var("attribution_window_days"))
    with marts_engine.begin() as conn:
        # Move two firings back to February so that orders can follow them before as_of.
        conn.execute(
            sa.text(
                "update ops.playbook_actions set as_of_date = '2026-02-10', status = 'sent' where action_id = any(:ids)"
            ),
            {"ids": [alert["action_id"], other["action_id"]]},
        )
        load_id = conn.execute(sa.text("select max(load_id) from raw.loads")).scalar_one()
        for order_id, account, day in [
            ("ATTR-1", alert["account_id"], "2026-02-14"),  # follows the firing: attributed
            ("ATTR-2", alert["account_id"], "2026-02-10"),  # the firing's own day: not attributed
            ("ATTR-3", other["account_id"], "2026-03-12"),  # the window's last day: attributed
        ]:
            conn.execute(
                sa.text(
                    "insert into raw.orders (order_id, account_id, ordered_at, amount, order_type, _load_id, _line, _unknown_account) "
                    "values (:o, :a, cast(:d as date) + time '12:00' at time zone 'Asia/Tokyo', 1000, 'upsell', :load, 0, false)"
                ),
                {"o": order_id, "a": account, "d": day, "load": load_id},
            )
    with marts_engine.begin() as conn:
        set_outcome(conn, alert["action_id"], "won", "test")
    try:
        run_dbt(db, settings, ["build", "--select", "+playbook_effectiveness"], use_prefect=False)
        with marts_engine.connect() as conn:
            attributed = dict(
                conn.execute(
                    sa.text(
                        "select order_id, action_id from intermediate.int_orders_attributed_to_actions "
                        "where account_id = any(:a)"
                    ),
                    {"a": accounts},
                ).all()
            )
            # Every order of the two accounts in (firing day, firing day + window], in base currency.
            following = conn.execute(
                sa.text(
                    """select o.order_id, o.account_id, o.amount * coalesce(
                              (select rate from json_each_text(cast(:rates as json)) as r(code, rate)
                               where r.code = coalesce(c.currency, 'USD'))::numeric, 1)
                       from intermediate.int_orders_filtered_to_as_of o
                       left join intermediate.int_contracts_rolled_to_accounts c using (account_id)
                       where o.account_id = any(:a) and o.order_date > date '2026-02-10'
                         and o.order_date <= date '2026-02-10' + :w"""
                ),
                {"a": accounts, "w": window, "rates": json.dumps(dbt_var("fx_to_base"))},
            ).all()
            february = (
                conn.execute(
                    sa.text(
                        "select * from marts.playbook_effectiveness where playbook = 'usage_decline' and month = '2026-02-01'"
                    )
                )
                .mappings()
                .one()
            )
    finally:
        with marts_engine.begin() as conn:
            conn.execute(sa.text("delete from raw.orders where order_id like 'ATTR-%'"))
    assert {"ATTR-1", "ATTR-3"} <= set(attributed) and "ATTR-2" not in attributed
    by_account = {alert["account_id"]: alert["action_id"], other["account_id"]: other["action_id"]}
    assert attributed == {order_id: by_account[account] for order_id, account, _ in following}
    assert february["fired"] == 2 and february["sent"] == 2 and february["won"] == 1
    assert february["converted"] == 2 and february["attributed_orders"] == len(following)
    assert float(february["attributed_revenue_base"]) == pytest.approx(float(sum(v for *_, v in following)))
    assert float(february["conversion_rate"]) == 1.0
