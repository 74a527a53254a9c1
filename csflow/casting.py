"""Vectorised type checks and casts for landing columns (Arrow compute).

Each landing value arrives as text. `cast_column` turns a text array into the
column's type and says, per row, whether the value was acceptable and why not.
The fast path is whole-array Arrow kernels plus a few byte-level screens; only
when one of them finds a suspect value (e.g. `2025-02-30`, which has the right
shape but is not a date) are the batch's values checked one by one.

What passes here is exactly what the typed COPY into PostgreSQL and csflow's
Python readers accept, so one bad value costs its row and never the file:
no NUL bytes, UTC offsets within -15:59..+15:59, instants within years
1-9999 in UTC, finite numbers, money that may not be negative >= 0, and
addresses that are exactly one mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from csflow.addresses import ADDRESS_PATTERN, MAX_LENGTH, WHAT
from csflow.contract import FALSE_WORDS, TRUE_WORDS, Column

INT_RE = r"^[+-]?\d{1,18}$"
NUMERIC_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$"
DATE_RE = r"^\d{4}-\d{2}-\d{2}$"
# ISO 8601: date, optional time with optional fraction, optional offset up to
# 15:59 (PostgreSQL's limit).
TIMESTAMP_RE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-](0\d|1[0-5])(:?[0-5]\d)?)?$"
OFFSET_RE = r"\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$"

EXPECTED = {
    "int": "a whole number",
    "numeric": "a number with '.' as decimal mark",
    "date": "an ISO 8601 date (YYYY-MM-DD)",
    "timestamp": "an ISO 8601 timestamp with an offset within ±15:59",
    "bool": "true/false, 1/0 or yes/no",
    "email": WHAT,
}
NUL_REASON = "contains a NUL byte"
RANGE_REASON = "outside the supported range (years 1 to 9999 in UTC)"
FINITE_REASON = "not a finite number"

# Landing `int` columns are stored as PostgreSQL integer.
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
# Instants every reader (PostgreSQL, psycopg2, Python's datetime) can hold.
FIRST_INSTANT = pa.scalar(-62135596800_000000, pa.timestamp("us", tz="UTC"))  # 0001-01-01T00:00:00Z
LAST_INSTANT = pa.scalar(253402300799_999999, pa.timestamp("us", tz="UTC"))  # 9999-12-31T23:59:59.999999Z


@dataclass
class CastResult:
    text: pa.Array  # the value to load, as canonical text; null where missing or invalid
    invalid: pa.Array  # boolean, true where the row must be rejected
    reason: pa.Array  # string, why (null where valid)


def printable(text: str) -> str:
    """Text from a landing file, safe to store and show: PostgreSQL text cannot hold a NUL byte."""
    return text.replace("\x00", "\\x00")


def _fill(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


def _none(n: int) -> pa.Array:
    """A boolean array of n falses."""
    return pa.array(np.zeros(n, dtype=bool))


def _bytes_of(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The data bytes and the value offsets of a string array, without copying."""
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset : text.offset + len(text) + 1]
    data = text.buffers()[2]
    return (np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)), offsets


def _may_hold_nul(text: pa.Array) -> bool:
    """A byte scan of the whole array: false means no value holds a NUL byte."""
    data, offsets = _bytes_of(text)
    window = data[offsets[0] : offsets[-1]]
    return bool(len(window)) and int(window.min()) == 0


def _may_have_big_offset(text: pa.Array) -> bool:
    """Screen for UTC offsets of 16 hours or more (+HH, +HHMM, +HH:MM at the end of a value).

    Arrow's cast accepts them and PostgreSQL does not; a regex over every
    timestamp would cost three times the cast, so look at the few bytes where
    an offset can be. False positives only send the batch down the exact path.
    """
    data, offsets = _bytes_of(text)
    if not len(data):
        return False
    starts, ends = offsets[:-1], offsets[1:]
    has_time = ends - starts >= 13  # YYYY-MM-DDTHH at least: no date-only value is looked at
    for width in (3, 5, 6):
        pos = np.clip(ends - width, 0, len(data) - 3)
        sign = data[pos]
        tens, ones = data[pos + 1], data[pos + 2]
        big = (tens > ord("1")) | ((tens == ord("1")) & (ones > ord("5")))
        if np.any(has_time & ((sign == ord("+")) | (sign == ord("-"))) & big):
            return True
    return False


def _cast_or_per_value(text: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Cast text to target; on failure find the failing values one by one.

    Returns (values, failed) where failed marks values that could not be cast.
    Values stay Arrow scalars: converting one to Python could itself fail
    (an instant past year 9999).
    """
    try:
        return pc.cast(text, target), _none(len(text))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    parts: list[pa.Array] = []
    failed: list[bool] = []
    for i in range(len(text)):
        one = text.slice(i, 1)
        try:
            parts.append(pc.cast(one, target))
            failed.append(False)
        except Exception:  # any value Arrow cannot cast is a bad value, whatever the error
            parts.append(pa.nulls(1, target))
            failed.append(True)
    values = pa.concat_arrays(parts) if parts else pa.array([], target)
    return values, pa.array(failed, pa.bool_())


def _naive_as_midnight(text: pa.Array) -> pa.Array:
    """A bare date means midnight; Arrow wants the time spelled out."""
    return pc.if_else(pc.equal(pc.utf8_length(text), 10), pc.binary_join_element_wise(text, "T00:00:00", ""), text)


def _timestamps(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(instants in UTC, failed) for well-shaped timestamp text, naive meaning UTC."""
    has_offset = _fill(pc.match_substring_regex(text, OFFSET_RE))
    aware, failed_a = _cast_or_per_value(pc.if_else(has_offset, text, None), pa.timestamp("us", tz="UTC"))
    naive, failed_b = _cast_or_per_value(_naive_as_midnight(pc.if_else(has_offset, None, text)), pa.timestamp("us"))
    instants = pc.if_else(has_offset, aware, pc.cast(naive, pa.timestamp("us", tz="UTC")))
    return instants, pc.or_(failed_a, failed_b)


def _out_of_range(instants: pa.Array) -> pa.Array:
    return _fill(pc.or_(pc.less(instants, FIRST_INSTANT), pc.greater(instants, LAST_INSTANT)))


def _int_bounds(column: Column) -> tuple[int, int]:
    return (
        INT_MIN if column.min_value is None else column.min_value,
        INT_MAX if column.max_value is None else column.max_value,
    )


def _all_valid_fast(text: pa.Array, column: Column) -> bool:
    """The common case, a few kernel calls: the column is clean."""
    if _may_hold_nul(text):
        return False
    if column.kind == "text":
        return column.allowed is None or pc.all(pc.or_(pc.is_null(text), pc.is_in(text, pa.array(column.allowed)))).as_py()
    if column.kind == "date":
        if pc.any(_fill(pc.starts_with(text, "0000"))).as_py():  # PostgreSQL has no year 0
            return False
        try:
            pc.cast(text, pa.date32())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        return True
    if column.kind == "timestamp":
        if pc.any(_fill(pc.starts_with(text, "0000"))).as_py() or _may_have_big_offset(text):
            return False
        try:
            instants = pc.cast(text, pa.timestamp("us", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        return not pc.any(_out_of_range(instants)).as_py()
    if column.kind == "int":
        try:
            values = pc.cast(text, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        lo, hi = _int_bounds(column)
        return not pc.any(_fill(pc.or_(pc.less(values, lo), pc.greater(values, hi)))).as_py()
    return False  # numeric, bool and email: checked by the exact path, which is cheap enough for them


def cast_column(raw: pa.Array, column: Column) -> CastResult:
    """Check one landing column; return the text PostgreSQL will accept for it.

    The checks are exactly what the COPY into the typed raw table needs, so a
    row that passes here never makes the database reject the whole file.
    Values are trimmed of ASCII white space; an empty value is missing.
    """
    text = pc.ascii_trim_whitespace(pc.cast(raw, pa.string()))
    if pc.any(pc.equal(text, "")).as_py():
        text = pc.if_else(pc.equal(text, ""), None, text)
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    n = len(text)
    missing = pc.is_null(text)
    if column.kind == "bool":
        text = pc.utf8_lower(text)
    if (not column.required or text.null_count == 0) and _all_valid_fast(text, column):
        return CastResult(text=text, invalid=_none(n), reason=pa.nulls(n, pa.string()))

    # The first reason that applies is the one reported, so the order matters.
    reasons: list[tuple[pa.Array, str]] = []
    if column.required:
        reasons.append((missing, "missing required value"))
    nul = _fill(pc.match_substring(text, "\x00"))
    reasons.append((nul, NUL_REASON))
    text = pc.if_else(nul, None, text)  # checked no further
    kind = column.kind
    present = pc.invert(pc.is_null(text))
    if kind == "text":
        if column.allowed:
            reasons.append((pc.and_(present, pc.invert(pc.is_in(text, pa.array(column.allowed)))), f"not one of {', '.join(column.allowed)}"))
    elif kind == "email":
        well_formed = pc.and_(
            _fill(pc.match_substring_regex(text, ADDRESS_PATTERN)), pc.less_equal(pc.utf8_length(text), MAX_LENGTH)
        )
        reasons.append((pc.and_(present, pc.invert(_fill(well_formed))), f"expected {EXPECTED[kind]}"))
    elif kind == "bool":
        known = pc.is_in(text, pa.array(TRUE_WORDS + FALSE_WORDS))
        reasons.append((pc.and_(present, pc.invert(known)), f"expected {EXPECTED[kind]}"))
    else:
        pattern = {"int": INT_RE, "numeric": NUMERIC_RE, "date": DATE_RE, "timestamp": TIMESTAMP_RE}[kind]
        shaped = _fill(pc.match_substring_regex(text, pattern))
        if kind in ("date", "timestamp"):
            # PostgreSQL has no year 0.
            shaped = pc.and_(shaped, pc.invert(_fill(pc.starts_with(text, "0000"))))
        candidates = pc.if_else(shaped, text, None)
        failed = _none(n)
        extra: list[tuple[pa.Array, str]] = []
        if kind == "int":
            # PostgreSQL takes "+4"; Arrow's cast does not, so drop the sign to check.
            values, failed = _cast_or_per_value(pc.replace_substring_regex(candidates, r"^\+", ""), pa.int64())
            lo, hi = _int_bounds(column)
            extra.append((_fill(pc.or_(pc.less(values, lo), pc.greater(values, hi))), f"must be between {lo} and {hi}"))
        elif kind == "numeric":
            values, failed = _cast_or_per_value(candidates, pa.float64())
            extra.append((pc.and_(pc.invert(pc.is_null(values)), pc.invert(_fill(pc.is_finite(values)))), FINITE_REASON))
            if column.min_value is not None:
                extra.append((_fill(pc.less(values, column.min_value)), f"must be at least {column.min_value}"))
        elif kind == "date":
            failed = _cast_or_per_value(candidates, pa.date32())[1]
        elif kind == "timestamp":
            instants, failed = _timestamps(candidates)
            extra.append((_out_of_range(instants), RANGE_REASON))
        reasons.append((pc.or_(pc.and_(present, pc.invert(shaped)), failed), f"expected {EXPECTED[kind]}"))
        reasons += extra

    invalid = _none(n)
    reason: pa.Array = pa.nulls(n, pa.string())
    for mask, why in reasons:
        mask = _fill(mask)
        reason = pc.if_else(pc.and_(mask, pc.invert(invalid)), why, reason)
        invalid = pc.or_(invalid, mask)
    return CastResult(text=pc.if_else(invalid, None, text), invalid=invalid, reason=reason)
