"""Vectorised type checks and casts for landing columns (Arrow compute).

Each landing value arrives as text. `cast_column` turns a text array into the
column's type and says, per row, whether the value was acceptable and why not.
The fast path is whole-array Arrow kernels; only when a kernel rejects a batch
(e.g. `2025-02-30`, which has the right shape but is not a date) do we look at
that batch's values one by one to find the culprits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from csflow.contract import FALSE_WORDS, TRUE_WORDS, Column

INT_RE = r"^[+-]?\d{1,18}$"
NUMERIC_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$"
DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
# ISO 8601: date, optional time with optional fraction, optional offset.
TIMESTAMP_RE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
OFFSET_RE = r"\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"

EXPECTED = {
    "int": "a whole number",
    "numeric": "a number with '.' as decimal mark",
    "date": "an ISO 8601 date (YYYY-MM-DD)",
    "timestamp": "an ISO 8601 timestamp",
    "bool": "true/false, 1/0 or yes/no",
}


@dataclass
class CastResult:
    text: pa.Array  # the value to load, as canonical text; null where missing or invalid
    invalid: pa.Array  # boolean, true where the row must be rejected
    reason: pa.Array  # string, why (null where valid)


# Landing `int` columns are stored as PostgreSQL integer.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _fill(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


def _none(n: int) -> pa.Array:
    """A boolean array of n falses."""
    return pa.array(np.zeros(n, dtype=bool))


def _cast_or_per_value(text: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Cast text to target; on failure find the failing values one by one.

    Returns (values, failed) where failed marks values that could not be cast.
    """
    try:
        return pc.cast(text, target), _none(len(text))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    values: list[object] = []
    failed: list[bool] = []
    for item in text:
        if not item.is_valid:
            values.append(None)
            failed.append(False)
            continue
        try:
            values.append(pc.cast(pa.array([item.as_py()], pa.string()), target)[0].as_py())
            failed.append(False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values.append(None)
            failed.append(True)
    return pa.array(values, target), pa.array(failed, pa.bool_())


def _bad_timestamps(text: pa.Array) -> pa.Array:
    """Which well-shaped timestamps are not real instants (e.g. month 13)."""
    has_offset = _fill(pc.match_substring_regex(text, OFFSET_RE))
    _, failed_a = _cast_or_per_value(pc.if_else(has_offset, text, None), pa.timestamp("us", tz="UTC"))
    # A bare date means midnight; Arrow wants the time spelled out to check it.
    naive = pc.if_else(has_offset, None, text)
    naive = pc.if_else(pc.equal(pc.utf8_length(naive), 10), pc.binary_join_element_wise(naive, "T00:00:00", ""), naive)
    _, failed_b = _cast_or_per_value(naive, pa.timestamp("us"))
    return pc.or_(failed_a, failed_b)


# A whole-array cast that succeeds proves every value of the column valid.
FAST_CASTS = {
    "int": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def _all_valid_fast(text: pa.Array, column: Column) -> bool:
    """The common case, one kernel call: the column is clean."""
    if column.kind == "text":
        return column.allowed is None or pc.all(pc.or_(pc.is_null(text), pc.is_in(text, pa.array(column.allowed)))).as_py()
    if column.kind in FAST_CASTS:
        if column.kind != "int" and pc.any(_fill(pc.starts_with(text, "0000"))).as_py():
            return False  # PostgreSQL has no year 0
        try:
            values = pc.cast(text, FAST_CASTS[column.kind])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        if column.kind == "int":
            lo = INT_MIN if column.min_value is None else column.min_value
            hi = INT_MAX if column.max_value is None else column.max_value
            return not pc.any(_fill(pc.or_(pc.less(values, lo), pc.greater(values, hi)))).as_py()
        return True
    return False


def cast_column(raw: pa.Array, column: Column) -> CastResult:
    """Check one landing column; return the text PostgreSQL will accept for it.

    The checks are exactly what the COPY into the typed raw table needs, so a
    row that passes here never makes the database reject the whole file.
    Values are trimmed of ASCII white space; an empty value is missing.
    """
    text = pc.ascii_trim_whitespace(pc.cast(raw, pa.string()))
    if pc.any(pc.equal(text, "")).as_py():
        text = pc.if_else(pc.equal(text, ""), None, text)
    n = len(text)
    missing = pc.is_null(text)
    if column.kind == "bool":
        text = pc.utf8_lower(text)
    if (not column.required or text.null_count == 0) and _all_valid_fast(text, column):
        return CastResult(text=text, invalid=_none(n), reason=pa.nulls(n, pa.string()))

    reasons: list[tuple[pa.Array, str]] = []
    if column.required:
        reasons.append((missing, "missing required value"))
    kind = column.kind
    if kind == "text":
        if column.allowed:
            bad = pc.and_(pc.invert(missing), pc.invert(pc.is_in(text, pa.array(column.allowed))))
            reasons.append((bad, f"not one of {', '.join(column.allowed)}"))
    elif kind == "bool":
        known = pc.is_in(text, pa.array(TRUE_WORDS + FALSE_WORDS))
        reasons.append((pc.and_(pc.invert(missing), pc.invert(known)), f"expected {EXPECTED[kind]}"))
    else:
        pattern = {"int": INT_RE, "numeric": NUMERIC_RE, "date": DATE_RE, "timestamp": TIMESTAMP_RE}[kind]
        shaped = _fill(pc.match_substring_regex(text, pattern))
        if kind in ("date", "timestamp"):
            # PostgreSQL has no year 0.
            shaped = pc.and_(shaped, pc.invert(_fill(pc.starts_with(text, "0000"))))
        candidates = pc.if_else(shaped, text, None)
        failed = _none(n)
        if kind == "int":
            # PostgreSQL takes "+4"; Arrow's cast does not, so drop the sign to check.
            values, failed = _cast_or_per_value(pc.replace_substring_regex(candidates, r"^\+", ""), pa.int64())
            lo = INT_MIN if column.min_value is None else column.min_value
            hi = INT_MAX if column.max_value is None else column.max_value
            out = _fill(pc.or_(pc.less(values, lo), pc.greater(values, hi)))
        elif kind == "date":
            failed = _cast_or_per_value(candidates, pa.date32())[1]
        elif kind == "timestamp":
            failed = _bad_timestamps(candidates)
        reasons.append((pc.or_(pc.and_(pc.invert(missing), pc.invert(shaped)), failed), f"expected {EXPECTED[kind]}"))
        if kind == "int":
            reasons.append((out, f"must be between {lo} and {hi}"))

    invalid = _none(n)
    reason: pa.Array = pa.nulls(n, pa.string())
    for mask, why in reasons:
        mask = _fill(mask)
        # The first reason that applies is the one reported.
        reason = pc.if_else(pc.and_(mask, pc.invert(invalid)), why, reason)
        invalid = pc.or_(invalid, mask)
    return CastResult(text=pc.if_else(invalid, None, text), invalid=invalid, reason=reason)
