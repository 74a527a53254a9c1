"""Ingest against a real PostgreSQL: rejects with lines and reasons, idempotent
reloads, CSV and Parquet alike, unknown accounts flagged."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from csflow.contract import ENTITIES
from csflow.ingest import find_landing_files, ingest_folder
from tests.conftest import write_csv


def rejects(engine: sa.Engine, entity: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "select line, column_name, value, reason from raw.current_load_rejects "
                    "where entity = :e order by line, column_name"
                ),
                {"e": entity},
            )
        ]


def rows(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql))]


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"select count(*) from raw.{table}")).scalar_one())


@pytest.fixture
def malformed(tmp_path: Path) -> Path:
    land = tmp_path / "landing"
    write_csv(
        land,
        "accounts.csv",
        """
        account_id,account_name,owner_email,created_date,fiscal_year_end_month
        A1,Acme,csm1@example.com,2024-01-05,3
        A2,"Beta, Inc.",csm1@example.com,2024-02-30,12
        A3,,csm2@example.com,2024-03-01,
        A4,Delta,csm2@example.com,2024-03-01,13
        A5,Echo,csm2@example.com,2024-03-01,
        """,
    )
    write_csv(
        land,
        "orders.csv",
        """
        order_id,account_id,ordered_at,amount,order_type
        O1,A1,2025-01-01T10:00:00+09:00,12.50,new
        O2,A1,2025-01-02T00:00:00Z,twelve,upsell
        O3,A9,2025-01-03 08:00:00,7,cross_sell
        O4,A5,2025-01-04,1e3,renewal
        O5,A5,2025-01-05T00:00:00Z,5,gift
        """,
    )
    # A file whose header is not the contract's: rejected whole.
    write_csv(land, "invoices.csv", "inv,acct,when,how_much\n1,A1,2025-01-01,3")
    return land


def test_malformed_rows_are_rejected_with_line_and_reason(engine: sa.Engine, malformed: Path) -> None:
    report = ingest_folder(engine, malformed)
    by_file = {f.file: f for f in report.files}

    assert (by_file["accounts.csv"].rows_loaded, by_file["accounts.csv"].rows_rejected) == (2, 3)
    assert rejects(engine, "accounts") == [
        (3, "created_date", "2024-02-30", "expected an ISO 8601 date (YYYY-MM-DD)"),
        (4, "account_name", None, "missing required value"),
        (5, "fiscal_year_end_month", "13", "must be between 1 and 12"),
    ]
    assert rows(engine, "select account_id from raw.accounts order by 1") == [("A1",), ("A5",)]

    assert (by_file["orders.csv"].rows_loaded, by_file["orders.csv"].rows_rejected) == (3, 2)
    assert rejects(engine, "orders") == [
        (3, "amount", "twelve", "expected a number with '.' as decimal mark"),
        (6, "order_type", "gift", "not one of new, renewal, upsell, cross_sell"),
    ]
    # Kept but flagged: O3 names an account nobody exported.
    assert by_file["orders.csv"].rows_unknown_account == 1
    assert rows(engine, "select order_id, _unknown_account from raw.orders order by 1") == [
        ("O1", False),
        ("O3", True),
        ("O4", False),
    ]
    # Offsets are honoured; naive timestamps and bare dates mean UTC.
    assert rows(engine, "select order_id, ordered_at, amount from raw.orders order by 1") == [
        ("O1", datetime(2025, 1, 1, 1, 0, tzinfo=UTC), Decimal("12.50")),
        ("O3", datetime(2025, 1, 3, 8, 0, tzinfo=UTC), Decimal("7")),
        ("O4", datetime(2025, 1, 4, 0, 0, tzinfo=UTC), Decimal("1000")),
    ]

    invoices = by_file["invoices.csv"]
    assert invoices.status == "rejected"
    assert "header lacks required column(s) invoice_id, account_id, due_date, amount" in invoices.message
    assert report.unusable == [invoices]
    assert rejects(engine, "invoices")[0][0] == 1
    assert "contacts" in report.absent


def test_loading_twice_leaves_the_same_data(engine: sa.Engine, malformed: Path) -> None:
    first = ingest_folder(engine, malformed)
    before = {t: count(engine, t) for t in ENTITIES}
    second = ingest_folder(engine, malformed)
    after = {t: count(engine, t) for t in ENTITIES}

    assert before == after
    assert [(f.rows_loaded, f.rows_rejected) for f in first.files] == [
        (f.rows_loaded, f.rows_rejected) for f in second.files
    ]
    assert {f.file: f.rows_replaced for f in second.files} == {"accounts.csv": 2, "orders.csv": 3, "invoices.csv": 0}
    assert len(rejects(engine, "accounts")) == 3  # the current view shows the latest load only


def test_a_reload_replaces_rows_by_key(engine: sa.Engine, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    header = "account_id,account_name,owner_email,created_date"
    write_csv(land, "accounts.csv", f"{header}\nA1,Old name,a@x.com,2024-01-01\nA2,Two,a@x.com,2024-01-01")
    ingest_folder(engine, land)
    write_csv(land, "accounts.csv", f"{header}\nA1,New name,a@x.com,2024-01-01\nA3,Three,b@x.com,2024-01-02")
    ingest_folder(engine, land)
    assert rows(engine, "select account_id, account_name from raw.accounts order by 1") == [
        ("A1", "New name"),
        ("A2", "Two"),
        ("A3", "Three"),
    ]


def test_duplicate_keys_in_one_file_keep_the_last_line_and_are_counted_apart(engine: sa.Engine, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    write_csv(
        land,
        "accounts.csv",
        """
        account_id,account_name,owner_email,created_date
        A1,First,a@x.com,2024-01-01
        A2,Two,a@x.com,2024-01-01
        A1,Second,a@x.com,2024-01-01
        """,
    )
    write_csv(
        land,
        "email_events.csv",
        """
        account_id,occurred_at,event,campaign
        A1,2025-01-01T00:00:00Z,open,spring
        A1,2025-01-01T00:00:00Z,open,spring-resend
        A1,2025-01-01T00:00:01Z,open,spring
        A1,2025-01-01T00:00:00Z,open,spring
        """,
    )
    report = ingest_folder(engine, land)
    assert rows(engine, "select account_id, account_name, _line from raw.accounts order by 1") == [
        ("A1", "Second", 4),
        ("A2", "Two", 3),
    ]
    assert rejects(engine, "accounts") == [(2, "account_id", None, "duplicate key; line 4 later in the file wins")]
    # Events have no id: keyed by every column the file gives, so only the exact repeat is one row.
    assert rows(engine, "select campaign, _line from raw.email_events order by occurred_at, campaign") == [
        ("spring", 5),
        ("spring-resend", 3),
        ("spring", 4),
    ]
    assert [(f.rows_loaded, f.rows_duplicate, f.rows_rejected) for f in report.files] == [(2, 1, 0), (3, 1, 0)]


def test_lines_count_physical_lines_with_multiline_values_and_broken_rows(engine: sa.Engine, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    land.mkdir()
    (land / "accounts.csv").write_text(
        "account_id,account_name,owner_email,created_date\nA1,One,a@x.com,2024-01-01\n", encoding="utf-8"
    )
    (land / "survey_responses.csv").write_text(
        "response_id,account_id,responded_at,survey_type,score,comment\n"
        'R1,A1,2025-01-01T00:00:00Z,nps,9,"great\nproduct"\n'  # lines 2-3
        "R2,A1,2025-01-02T00:00:00Z,nps\n"  # line 4: too few fields
        'R3,A1,2025-01-03T00:00:00Z,nps,11x,"two\nline\ncomment"\n'  # lines 5-7: bad score
        "R4,A1,2025-01-04T00:00:00Z,csat,4,ok\n",  # line 8
        encoding="utf-8",
    )
    ingest_folder(engine, land)
    assert rejects(engine, "survey_responses") == [
        (4, None, "R2,A1,2025-01-02T00:00:00Z,nps", "expected 6 fields, found 4"),
        (5, "score", "11x", "expected a whole number"),
    ]
    assert rows(engine, "select response_id, _line, comment from raw.survey_responses order by 1") == [
        ("R1", 2, "great\nproduct"),
        ("R4", 8, "ok"),
    ]


def test_unknown_account_flags_clear_when_the_account_arrives(engine: sa.Engine, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    write_csv(land, "accounts.csv", "account_id,account_name,owner_email,created_date\nA1,One,a@x.com,2024-01-01")
    write_csv(land, "contacts.csv", "contact_id,account_id,email\nC1,A1,a@x.com\nC2,A2,b@x.com")
    ingest_folder(engine, land)
    assert rows(engine, "select contact_id from raw.contacts where _unknown_account") == [("C2",)]
    write_csv(land, "accounts.csv", "account_id,account_name,owner_email,created_date\nA2,Two,a@x.com,2024-01-01")
    (land / "contacts.csv").unlink()
    ingest_folder(engine, land)
    assert rows(engine, "select contact_id from raw.contacts where _unknown_account") == []


def test_unusable_files_are_rejected_whole_with_a_clear_message(engine: sa.Engine, tmp_path: Path) -> None:
    land = tmp_path / "landing"
    land.mkdir()
    (land / "accounts.csv").write_text("", encoding="utf-8")
    (land / "contacts.csv").write_bytes(b"contact_id,account_id,email\nC1,A1,\xff\xfe@x.com\n")
    (land / "orders.parquet").write_bytes(b"this is not parquet")
    report = ingest_folder(engine, land)
    messages = {f.file: f.message for f in report.files}
    assert messages["accounts.csv"] == "accounts.csv: empty file: no header row"
    assert messages["contacts.csv"].startswith("contacts.csv: not UTF-8 text")
    assert messages["orders.parquet"].startswith("orders.parquet: not a readable Parquet file")
    assert all(f.status == "rejected" for f in report.files)


def test_parquet_and_csv_load_the_same(server, tmp_path: Path, engine: sa.Engine) -> None:
    from csflow.demo import generate

    csv_dir, parquet_dir = tmp_path / "csv", tmp_path / "parquet"
    generate(csv_dir, accounts=40, seed=3, as_of=date(2026, 3, 31), fmt="csv")
    # Typed Parquet, as a warehouse export would write it, from the same rows.
    parquet_dir.mkdir()
    for path in csv_dir.glob("*.csv"):
        table = pa_csv.read_csv(path)  # Arrow infers dates, numbers, booleans
        pq.write_table(table, parquet_dir / f"{path.stem}.parquet")

    def snapshot() -> dict[str, list[tuple]]:
        out = {}
        for name, entity in ENTITIES.items():
            cols = ", ".join(f'"{c}"' for c in entity.column_names)
            out[name] = rows(engine, f"select {cols} from raw.{name} order by {cols}")
        return out

    ingest_folder(engine, csv_dir)
    from_csv = snapshot()
    with engine.begin() as conn:
        for name in ENTITIES:
            conn.execute(sa.text(f"truncate raw.{name}"))
    report = ingest_folder(engine, parquet_dir)
    assert not report.unusable and sum(f.rows_rejected for f in report.files) == 0
    assert snapshot() == from_csv
    assert sum(len(v) for v in from_csv.values()) > 1000


def test_two_files_for_one_entity_is_an_error(tmp_path: Path) -> None:
    land = tmp_path / "landing"
    write_csv(land, "accounts.csv", "account_id\nA1")
    pq.write_table(pa.table({"account_id": ["A1"]}), land / "accounts.parquet")
    with pytest.raises(Exception, match="both accounts.csv and accounts.parquet"):
        find_landing_files(land)
