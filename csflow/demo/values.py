"""Writing the files, formatting values as the contract wants them, sampling, calendars and local times."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from csflow.contract import ENTITIES
from csflow.demo.catalogue import DAY, FREE_TEXT_ENTITIES, OFFSETS

if TYPE_CHECKING:
    from csflow.demo.plan import _Chunk, _Contacts, _Run


class _LandingWriter:
    """One open writer per entity, so each chunk is appended to its file and then dropped."""

    def __init__(self, out_dir: Path, fmt: str, progress: Callable[[str, int], None] | None) -> None:
        self.rows = dict.fromkeys(ENTITIES, 0)
        self._progress = progress
        self._writers: dict[str, pacsv.CSVWriter | pq.ParquetWriter] = {}
        for name in ENTITIES:
            path = out_dir / f"{name}.{fmt}"
            if fmt == "csv":
                # "none" makes pyarrow refuse a structural character instead of writing a broken file.
                quoting = "needed" if name in FREE_TEXT_ENTITIES else "none"
                options = pacsv.WriteOptions(quoting_style=quoting)
                self._writers[name] = pacsv.CSVWriter(path, _schema(name), write_options=options)
            else:
                self._writers[name] = pq.ParquetWriter(path, _schema(name), compression="zstd")

    def write(self, entity: str, table: pa.Table) -> None:
        self._writers[entity].write_table(table)
        self.rows[entity] += table.num_rows
        if self._progress is not None:
            self._progress(entity, self.rows[entity])

    def __enter__(self) -> _LandingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for writer in self._writers.values():
            writer.close()


@cache
def _schema(entity: str) -> pa.Schema:
    """Every column as text: values are already formatted the way the contract spells them."""
    return pa.schema([pa.field(name, pa.string()) for name in ENTITIES[entity].column_names])


def _table(entity: str, **columns: pa.Array) -> pa.Table:
    """Columns in contract order; a missing or unknown column is a bug in this module."""
    names = ENTITIES[entity].column_names
    if set(columns) != set(names):
        raise ValueError(f"{entity}: columns {sorted(columns)} do not match the contract {names}")
    return pa.Table.from_arrays([columns[name] for name in names], schema=_schema(entity))


def _pick(values: Sequence[str], index: np.ndarray) -> pa.Array:
    """values[index] as text, null where index is -1."""
    index = np.asarray(index)
    return pa.array(values, pa.string()).take(pa.array(np.maximum(index, 0), mask=index < 0))


def _null_where(values: pa.Array, mask: np.ndarray) -> pa.Array:
    return pc.if_else(pa.array(mask, pa.bool_()), pa.scalar(None, pa.string()), values)


def _zero_pad(numbers: np.ndarray, digits: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), digits, "0")


def _ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    return pc.binary_join_element_wise(prefix, _zero_pad(numbers, digits), "")


def _ints(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    return pc.cast(pa.array(values, mask=None if valid is None else ~valid), pa.string())


def _bools(values: np.ndarray) -> pa.Array:
    return _pick(("false", "true"), values.astype(np.int64))


def _money(cents: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Cents as a decimal with two places, e.g. 123456 -> 1234.56."""
    units, rest = np.divmod(np.asarray(cents, dtype=np.int64), 100)
    text = pc.binary_join_element_wise(pc.cast(pa.array(units), pa.string()), _zero_pad(rest, 2), ".")
    return text if valid is None else _null_where(text, ~valid)


def _to_cents(units: np.ndarray, step_cents: np.ndarray | int) -> np.ndarray:
    """Amounts in currency units to cents, rounded to a multiple of step_cents (yen have no cents)."""
    return np.rint(np.asarray(units) * 100 / step_cents).astype(np.int64) * step_cents


def _cent_step(chunk: _Chunk, a: np.ndarray) -> np.ndarray:
    """Yen amounts are whole yen; dollar amounts keep their cents."""
    return np.where(chunk.rate[a] > 1, 100, 1)


def _day_labels(days: np.ndarray, suffix: str = "") -> tuple[pa.Array, int]:
    """ISO labels for every day between the smallest and largest of `days`, and that smallest day."""
    low = int(days.min()) if len(days) else 0
    high = int(days.max()) if len(days) else -1
    labels = np.arange(low, high + 1).astype("datetime64[D]").astype(str)
    return pa.array([f"{label}{suffix}" for label in labels], pa.string()), low


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    labels, low = _day_labels(days)
    index = days - low
    return labels.take(pa.array(index, mask=None if valid is None else ~valid))


@cache
def _clock() -> pa.Array:
    """HH:MM:SS for every second of a day: formatting by lookup is much faster than strftime."""
    return pa.array([f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY)], pa.string())


def _timestamps(chunk: _Chunk, a: np.ndarray, lt: np.ndarray) -> pa.Array:
    """Local wall-clock seconds as ISO 8601 with the account's offset, e.g. 2026-03-31T10:15:00+09:00."""
    day, second = np.divmod(lt, DAY)
    labels, low = _day_labels(day, suffix="T")
    return pc.binary_join_element_wise(
        labels.take(day - low), _clock().take(second), _pick(OFFSETS, chunk.offset[a]), ""
    )


def _choose(rng: np.random.Generator, probs: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One category per row, drawn from the probabilities of the row's group (a row of `probs`).

    Vectorised: each group's cumulative distribution is shifted by its index
    so one searchsorted serves all groups at once.
    """
    cum = np.cumsum(probs, axis=1)
    cum = cum / cum[:, -1:]
    k = probs.shape[1]
    flat = (cum + np.arange(len(cum))[:, None]).ravel()
    picks = np.searchsorted(flat, group + rng.random(len(group)), side="right") - group * k
    return np.minimum(picks, k - 1)


def _office_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Second of the local day, mostly in office hours."""
    return np.clip(rng.normal(13.5 * 3600, 3 * 3600, n), 0, DAY - 1).astype(np.int64)


def _local_times(run: _Run, chunk: _Chunk, a: np.ndarray, day: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Local timestamps; on as_of itself, times are squeezed before the account's limit (keeping their order).

    Where as_of has not begun yet at the moment of generation (an account west of the run's
    time zone), its as_of rows land on the limit itself, the evening before: never later.
    """
    limit = chunk.limit[a]
    cutoff = np.maximum(limit - run.as_of_day * DAY, 0)  # last second of as_of the account may use
    second = np.where(day == run.as_of_day, second * (cutoff + 1) // DAY, second)
    return np.minimum(day * DAY + second, limit)


def _distinct_times(a: np.ndarray, lt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort rows by account and time and move ties a second earlier, so keys without an id stay unique.

    Returns the sort order and the adjusted times. Walking backwards
    (t[i] = min(t[i], t[i+1] - 1) within an account) never moves a time later,
    so nothing crosses the as_of limit.
    """
    order = np.lexsort((lt, a))
    a, lt = a[order], lt[order]
    position = np.arange(len(lt))
    shifted = lt - position + a * (1 << 40)  # separate accounts so one running minimum serves all
    return order, np.minimum.accumulate(shifted[::-1])[::-1] - a * (1 << 40) + position


def _pick_contact(
    rng: np.random.Generator, contacts: _Contacts, a: np.ndarray, known_share: float, subscribed_only: bool = False
) -> np.ndarray:
    """A random contact of each row's account (index into contacts.ids), -1 for an unknown person.

    With subscribed_only, an unsubscribed pick passes to the next colleague,
    and the row gets -1 when that one unsubscribed too.
    """
    first, count = contacts.first[a], contacts.count[a]
    pick = first + (rng.random(len(a)) * count).astype(np.int64)
    if subscribed_only:
        pick = np.where(contacts.unsubscribed[pick], first + (pick - first + 1) % count, pick)
        pick = np.where(contacts.unsubscribed[pick], -1, pick)
    return np.where(rng.random(len(a)) < known_share, pick, -1)


def _contact_ids(contacts: _Contacts, index: np.ndarray) -> pa.Array:
    return contacts.ids.take(pa.array(np.maximum(index, 0), mask=index < 0))


def _add_months(days: np.ndarray | int, months: np.ndarray | int) -> np.ndarray:
    """Calendar months like PostgreSQL's `date + interval 'N months'`: the day is clipped to the month's end."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    day_of_month = (d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + np.asarray(months, dtype=np.int64)
    month_days = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return (target.astype("datetime64[D]") + np.minimum(day_of_month, month_days - 1)).astype(np.int64)


def _month_of(days: np.ndarray) -> np.ndarray:
    """Month number 1-12 of each day."""
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12 + 1


def _month_start(days: np.ndarray | int) -> np.ndarray:
    month = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]")
    return month.astype("datetime64[D]").astype(np.int64)


def _day_label(day: int) -> str:
    return str(np.datetime64(int(day), "D"))
