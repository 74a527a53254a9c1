"""Type checks of landing values, without a database: what passes must be
exactly what PostgreSQL accepts, and the fast and slow paths must agree."""

from __future__ import annotations

import pyarrow as pa
import pytest

from csflow.casting import EXPECTED, FINITE_REASON, NUL_REASON, RANGE_REASON, cast_column
from csflow.contract import Column

BAD_TIMESTAMP = f"expected {EXPECTED['timestamp']}"
BAD_EMAIL = f"expected {EXPECTED['email']}"


def check(kind: str, values: list[str | None], **kw: object) -> list[str | None]:
    """Reason per value (None when valid)."""
    result = cast_column(pa.array(values, pa.string()), Column("c", kind, **kw))  # type: ignore[arg-type]
    return result.reason.to_pylist()


def test_timestamps_accept_iso_8601_with_or_without_offset() -> None:
    good = [
        "2026-03-31T10:15:00+09:00",
        "2026-03-31T10:15:00Z",
        "2026-03-31 10:15:00",
        "2026-03-31T10:15:00.123456+0900",
        "2026-03-31",
        " 2026-03-31T10:15:00Z ",
    ]
    assert check("timestamp", good) == [None] * len(good)


@pytest.mark.parametrize("value", ["2026-02-30T00:00:00Z", "2026-13-01", "31/03/2026", "0000-01-01", "yesterday"])
def test_timestamps_reject_impossible_or_foreign_values(value: str) -> None:
    # Mixed with a valid value, so the per-value fallback has to find the culprit.
    assert check("timestamp", ["2026-03-31T00:00:00Z", value]) == [None, BAD_TIMESTAMP]


def test_dates_numbers_ints_and_bools() -> None:
    assert check("date", ["2024-02-29", "2023-02-29", "2024-2-1"]) == [
        None,
        "expected an ISO 8601 date (YYYY-MM-DD)",
        "expected an ISO 8601 date (YYYY-MM-DD)",
    ]
    assert check("numeric", ["12.50", "-3", ".5", "1e3", "1,000", "NaN"]) == [None] * 4 + [
        "expected a number with '.' as decimal mark"
    ] * 2
    assert check("int", ["3", "+4", "3.0", "99999999999"]) == [
        None,
        None,
        "expected a whole number",
        "must be between -2147483648 and 2147483647",
    ]
    assert check("int", ["0", "12", "13"], min_value=1, max_value=12) == [
        "must be between 1 and 12",
        None,
        "must be between 1 and 12",
    ]
    assert check("bool", ["TRUE", "no", "1", "maybe"]) == [None, None, None, "expected true/false, 1/0 or yes/no"]


def test_required_and_allowed_values() -> None:
    assert check("text", ["a", None, "  "], required=True) == [None, "missing required value", "missing required value"]
    assert check("text", ["active", "paused", None], allowed=("active", "churned")) == [
        None,
        "not one of active, churned",
        None,
    ]


def test_loaded_text_is_trimmed_and_invalid_values_are_dropped() -> None:
    result = cast_column(pa.array([" A1 ", "x"], pa.string()), Column("c", "int"))
    assert result.text.to_pylist() == [None, None]
    result = cast_column(pa.array([" A1 ", ""], pa.string()), Column("c", "text"))
    assert result.text.to_pylist() == ["A1", None]
    assert cast_column(pa.array(["YES"]), Column("c", "bool")).text.to_pylist() == ["yes"]


@pytest.mark.parametrize("kind", ["text", "email", "int", "numeric", "date", "timestamp", "bool"])
def test_a_nul_byte_is_a_reject_in_every_kind_of_column(kind: str) -> None:
    good = {"text": "a", "email": "a@x.com", "int": "1", "numeric": "1.5", "date": "2026-03-31",
            "timestamp": "2026-03-31T00:00:00Z", "bool": "true"}[kind]
    assert check(kind, [good, good[:1] + "\x00" + good[1:]]) == [None, NUL_REASON]


def test_offsets_beyond_15_59_and_instants_past_year_9999_are_rejects() -> None:
    values = [
        "2026-03-31T10:00:00+15:59",
        "2026-03-31T10:00:00-1530",
        "2026-03-31T10:00:00+16:00",
        "2026-03-31T10:00:00-16",
        "2026-03-31T10:00:00+2359",
        "9999-12-31T23:00:00-05:00",  # year 10000 in UTC: PostgreSQL takes it, Python cannot read it back
        "0001-01-01T00:00:00+01:00",
    ]
    assert check("timestamp", values) == [None, None, BAD_TIMESTAMP, BAD_TIMESTAMP, BAD_TIMESTAMP, RANGE_REASON, RANGE_REASON]
    # Alone (the fast path's byte screen, not the per-value fallback, has to catch it).
    assert check("timestamp", ["2026-03-31T10:00:00+16:00"]) == [BAD_TIMESTAMP]
    assert check("timestamp", ["9999-12-31T23:00:00-05:00"]) == [RANGE_REASON]


def test_non_finite_numbers_and_negative_money_are_rejects() -> None:
    assert check("numeric", ["1e999", "-1e999", "1" + "0" * 400, "12.5", "-3"]) == [FINITE_REASON] * 3 + [None, None]
    assert check("numeric", ["0", "-0.01", "120000.00"], min_value=0) == [None, "must be at least 0", None]


@pytest.mark.parametrize(
    "value",
    ["a@x.com, evil@y.com", "a@x.com>, <evil@y.com", "A <a@x.com>", "a@x.com evil@y.com", "a@x", "@x.com",
     "<img src=x onerror=alert(1)>@x.com", "a@x.com\nBcc: evil@y.com", "a..b@x.com"],
)
def test_an_email_column_takes_exactly_one_plain_address(value: str) -> None:
    assert check("email", ["first.last+tag@mail.example.co.jp", value]) == [None, BAD_EMAIL]
