"""Type checks of landing values, without a database: what passes must be
exactly what PostgreSQL accepts, and the fast and slow paths must agree."""

from __future__ import annotations

import pyarrow as pa
import pytest

from csflow.casting import cast_column
from csflow.contract import Column


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
    assert check("timestamp", ["2026-03-31T00:00:00Z", value]) == [None, "expected an ISO 8601 timestamp"]


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
