"""Load a landing folder into schema `raw` (data-contract.md, loading rules).

One file is one transaction: its good rows go in with a single typed COPY,
its bad rows go to `raw.load_rejects` with line, column and reason, and rows
of earlier loads with the same key are replaced, so loading a folder twice
leaves the same data. Type checks run vectorised in Arrow on a second thread
while PostgreSQL consumes the previous batch, so the database does one pass
over clean, canonical rows.

No byte of a file can stop the others: a value the database would refuse is
a reject (csflow.casting), and a file that fails anyway (a database error, a
reader that gives up) is rejected whole with a message while the next files
load. A load cut short by a crash is marked `interrupted` by the next ingest.
"""

from __future__ import annotations

import csv
import io
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import sqlalchemy as sa

from csflow.casting import cast_column, printable
from csflow.contract import ENTITIES, LINE, LOAD_ID, LOAD_ORDER, OUTCOMES_FILE, UNKNOWN_ACCOUNT, Entity

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (entity, done, total)

BLOCK_SIZE = 8 << 20  # bytes of CSV per Arrow batch
# raw.loads.status of a load that ended (loaded or rejected); `running` while it
# runs, `interrupted` when a crash cut it short.
FINISHED = "('loaded', 'rejected')"
PARQUET_BATCH_ROWS = 200_000
REJECT_VALUE_CHARS = 200


class FileUnusable(Exception):
    """The whole file cannot be loaded (no header, missing columns, not UTF-8...)."""


class _NeedsExactRead(Exception):
    """Malformed rows, or line breaks inside values: reread the file in exact mode."""


@dataclass
class FileResult:
    entity: str
    file: str
    status: str  # loaded | rejected
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_unknown_account: int = 0
    rows_replaced: int = 0
    rows_duplicate: int = 0  # repeated keys in the file: the later line won (not counted as rejected)
    message: str = ""


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def unusable(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "rejected"]

    def totals(self) -> dict[str, int]:
        return {
            "rows_loaded": sum(f.rows_loaded for f in self.files),
            "rows_rejected": sum(f.rows_rejected for f in self.files),
            "rows_duplicate": sum(f.rows_duplicate for f in self.files),
            "rows_unknown_account": sum(f.rows_unknown_account for f in self.files),
        }


# --------------------------------------------------------------------------
# Reading landing files into batches of text columns with line numbers


@dataclass
class _Batch:
    table: pa.Table  # text columns of the contract present in the file
    lines: np.ndarray  # line number (CSV) or row number (Parquet) of each row


class _CountingFile(io.RawIOBase):
    """Counts bytes (for progress) and physical lines (to check line numbers)."""

    def __init__(self, path: Path, on_read: Callable[[int], None]):
        self._f = open(path, "rb")  # noqa: SIM115 - closed in close()
        self._on_read = on_read
        self.done = 0
        self.newlines = 0
        self.ends_with_newline = True

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = self._f.readinto(b) or 0
        if n:
            chunk = bytes(memoryview(b)[:n])
            self.newlines += chunk.count(b"\n")
            self.ends_with_newline = chunk.endswith(b"\n")
        self.done += n
        self._on_read(self.done)
        return n

    @property
    def physical_lines(self) -> int:
        return self.newlines + (0 if self.ends_with_newline else 1)

    def close(self) -> None:
        self._f.close()
        super().close()


def _csv_header(path: Path, entity: Entity) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)
    except UnicodeDecodeError:
        raise FileUnusable("not UTF-8 text") from None
    if not header or all(not h.strip() for h in header):
        raise FileUnusable("empty file: no header row")
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FileUnusable(f"header repeats column(s) {', '.join(dupes)}")
    _check_columns(entity, names)
    return names


def _check_columns(entity: Entity, names: list[str]) -> None:
    missing = [c for c in entity.required if c not in names]
    if missing:
        raise FileUnusable(
            f"header lacks required column(s) {', '.join(missing)} "
            f"(found: {', '.join(names[:12])}{'...' if len(names) > 12 else ''})"
        )


def _newline_counts(table: pa.Table) -> np.ndarray:
    """Line breaks inside quoted values, per row, so reported lines are physical lines."""
    counts = np.zeros(table.num_rows, dtype=np.int64)
    for col in table.columns:
        per_row = pc.fill_null(pc.count_substring(col, "\n"), 0)
        if pc.sum(per_row).as_py():
            counts += per_row.to_numpy()
    return counts


def _csv_options(header: list[str], entity: Entity, handler: Callable[[object], str]):
    present = [n for n in header if n in set(entity.column_names)]
    read = pa_csv.ReadOptions(column_names=header, skip_rows=1, block_size=BLOCK_SIZE, use_threads=False)
    parse = pa_csv.ParseOptions(newlines_in_values=True, invalid_row_handler=handler)
    convert = pa_csv.ConvertOptions(
        column_types={n: pa.string() for n in header},
        include_columns=present,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        null_values=[""],
    )
    return read, parse, convert


def _read_csv_streaming(path: Path, entity: Entity, header: list[str], on_read: Callable[[int], None]) -> Iterator[_Batch]:
    """Fast path: stream blocks, one record per line.

    A malformed row, or a file with more lines than records (line breaks in
    quoted values, blank lines), sends the load to the exact path, which
    knows every row's physical line.
    """
    bad_rows: list[object] = []

    def handler(row: object) -> str:
        bad_rows.append(row)
        return "skip"

    read, parse, convert = _csv_options(header, entity, handler)
    source = _CountingFile(path, on_read)
    try:
        reader = pa_csv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
        first_line = 2
        for record_batch in reader:
            if bad_rows:
                raise _NeedsExactRead()
            lines = first_line + np.arange(record_batch.num_rows, dtype=np.int64)
            first_line += record_batch.num_rows
            yield _Batch(pa.Table.from_batches([record_batch]), lines)
        if bad_rows or source.physical_lines != first_line - 1:
            raise _NeedsExactRead()
    except pa.ArrowInvalid as exc:
        raise FileUnusable(_arrow_message(exc)) from None
    finally:
        source.close()


def _read_csv_exact(path: Path, entity: Entity, header: list[str], structural: list[tuple[int, str, str]]) -> Iterator[_Batch]:
    """Whole-file read that knows the line of every malformed row."""
    bad_rows: list[tuple[int, str, int, int]] = []

    def handler(row: object) -> str:
        bad_rows.append((row.number, row.text, row.expected_columns, row.actual_columns))  # type: ignore[attr-defined]
        return "skip"

    read, parse, convert = _csv_options(header, entity, handler)
    try:
        table = pa_csv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise FileUnusable(_arrow_message(exc)) from None
    # Arrow numbers malformed rows by record (header = 1). Place the good rows
    # between them by record number, then turn record numbers into physical
    # lines by adding the line breaks inside quoted values of earlier records.
    bad_rows.sort(key=lambda r: r[0] or 0)
    records = 2 + np.arange(table.num_rows, dtype=np.int64)
    for number, *_ in bad_rows:
        records[records >= int(number or 0)] += 1
    bad_records = np.array([int(r[0] or 0) for r in bad_rows], dtype=np.int64)
    all_records = np.concatenate((records, bad_records))
    all_newlines = np.concatenate((_newline_counts(table), [r[1].count("\n") for r in bad_rows])).astype(np.int64)
    order = np.argsort(all_records, kind="stable")
    before = np.empty_like(all_newlines)
    before[order] = np.cumsum(all_newlines[order]) - all_newlines[order]
    physical = all_records + before
    lines = physical[: table.num_rows]
    for (_, text, expected, actual), line in zip(bad_rows, physical[table.num_rows :], strict=True):
        structural.append((int(line), text, f"expected {expected} fields, found {actual}"))
    offset = 0
    for record_batch in table.to_batches(max_chunksize=500_000):
        n = record_batch.num_rows
        yield _Batch(pa.Table.from_batches([record_batch]), lines[offset : offset + n])
        offset += n


def _read_parquet(path: Path, entity: Entity, on_read: Callable[[int], None]) -> Iterator[_Batch]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise FileUnusable(f"not a readable Parquet file ({exc})") from None
    names = pf.schema_arrow.names
    _check_columns(entity, names)
    present = [n for n in names if n in set(entity.column_names)]
    row = 1
    for record_batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=present):
        table = pa.Table.from_batches([record_batch])
        table = pa.table({n: pc.cast(table[n], pa.string()) for n in present})
        yield _Batch(table, np.arange(row, row + table.num_rows, dtype=np.int64))
        row += table.num_rows
        on_read(row - 1)


def _arrow_message(exc: Exception) -> str:
    text = str(exc).splitlines()[0]
    if "UTF8" in text or "UTF-8" in text:
        return f"not UTF-8 text ({text})"
    return text


# --------------------------------------------------------------------------
# Checking and shaping one batch


@dataclass
class _Prepared:
    rows: pa.Table  # checked rows ready for COPY: contract columns, then _line
    rejects: pa.Table  # line, column_name, value, reason
    rejected_rows: int
    unknown_lines: np.ndarray  # lines of rows whose account is not in raw.accounts


def _prepare(entity: Entity, batch: _Batch, known_accounts: pa.Array | None) -> _Prepared:
    n = batch.table.num_rows
    invalid = np.zeros(n, dtype=bool)
    typed: dict[str, pa.Array] = {}
    reject_parts: list[pa.Table] = []
    lines = pa.array(batch.lines)
    for column in entity.columns:
        if column.name in batch.table.column_names:
            raw = batch.table[column.name].combine_chunks()
        else:
            raw = pa.nulls(n, pa.string())
        result = cast_column(raw, column)
        typed[column.name] = result.text
        mask = result.invalid.to_numpy(zero_copy_only=False)
        if mask.any():
            invalid |= mask
            picked = pa.array(mask)
            reject_parts.append(
                pa.table(
                    {
                        "line": lines.filter(picked),
                        "column_name": pa.array([column.name] * int(mask.sum()), pa.string()),
                        "value": pc.utf8_slice_codeunits(pc.cast(raw.filter(picked), pa.string()), 0, REJECT_VALUE_CHARS),
                        "reason": result.reason.filter(picked),
                    }
                )
            )
    keep = pa.array(~invalid)
    out = {name: arr.filter(keep) for name, arr in typed.items()}
    out[LINE] = lines.filter(keep)
    unknown = np.array([], dtype=np.int64)
    if entity.has_account and known_accounts is not None:
        flag = pc.invert(pc.is_in(out["account_id"], value_set=known_accounts))
        if pc.any(flag).as_py():
            unknown = out[LINE].filter(flag).to_numpy()
    rejects = pa.concat_tables(reject_parts) if reject_parts else _empty_rejects()
    return _Prepared(pa.table(out), rejects, int(invalid.sum()), unknown)


def _empty_rejects() -> pa.Table:
    return pa.table(
        {
            "line": pa.array([], pa.int64()),
            "column_name": pa.array([], pa.string()),
            "value": pa.array([], pa.string()),
            "reason": pa.array([], pa.string()),
        }
    )


def _to_csv(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()


# --------------------------------------------------------------------------
# Streaming prepared batches into COPY on a second thread


class _QueueReader(io.RawIOBase):
    """File-like end of a queue of byte chunks, for psycopg2's copy_expert."""

    def __init__(self, chunks: queue.Queue):
        self._chunks = chunks
        self._buf = memoryview(b"")
        # psycopg2 turns an exception in read() into QueryCanceled; keep the original.
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        while not self._buf:
            item = self._chunks.get()
            if item is None:
                return b""
            if isinstance(item, BaseException):
                self.error = item
                raise item
            self._buf = memoryview(item)
        # psycopg2 sends whatever read() returns, so hand over whole chunks.
        chunk, self._buf = self._buf, memoryview(b"")
        return bytes(chunk)


@dataclass
class _Tally:
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    unknown_lines: list[np.ndarray] = field(default_factory=list)
    rejects: list[pa.Table] = field(default_factory=list)
    keys: list[pa.Table] = field(default_factory=list)


def _produce(
    batches: Iterator[_Batch],
    entity: Entity,
    known_accounts: pa.Array | None,
    out: queue.Queue,
    tally: _Tally,
    stop: threading.Event,
) -> None:
    def put(item: object) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    try:
        for batch in batches:
            if stop.is_set():
                return
            key = entity.key_in(batch.table.column_names)
            prepared = _prepare(entity, batch, known_accounts)
            tally.rows_read += batch.table.num_rows
            tally.rows_loaded += prepared.rows.num_rows
            tally.rows_rejected += prepared.rejected_rows
            tally.unknown_lines.append(prepared.unknown_lines)
            if prepared.rejects.num_rows:
                tally.rejects.append(prepared.rejects)
            tally.keys.append(prepared.rows.select([*key, LINE]))
            if prepared.rows.num_rows:
                put(_to_csv(prepared.rows))
        put(None)
    except BaseException as exc:  # handed to the COPY side, which re-raises it
        put(exc)


def _copy_columns(entity: Entity) -> str:
    """Bookkeeping columns cost as much to COPY as data: only _line is sent;
    _load_id comes from a per-load column default and _unknown_account is set
    afterwards for the few rows that need it."""
    return ", ".join([f'"{c}"' for c in entity.column_names] + [LINE])


def _copy_stream(
    cursor: object, entity: Entity, batches: Iterator[_Batch], known: pa.Array | None, freeze: bool
) -> _Tally:
    chunks: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    tally = _Tally()
    producer = threading.Thread(
        target=_produce, args=(batches, entity, known, chunks, tally, stop), daemon=True, name=f"prepare-{entity.name}"
    )
    producer.start()
    reader = _QueueReader(chunks)
    try:
        cursor.copy_expert(  # type: ignore[attr-defined]
            f"copy raw.{entity.name} ({_copy_columns(entity)}) from stdin with (format csv{', freeze' if freeze else ''})",
            reader,
            size=1 << 20,
        )
    except Exception:
        if reader.error is not None:
            raise reader.error from None
        raise
    finally:
        stop.set()
        producer.join()
    return tally


# --------------------------------------------------------------------------
# Loading one file


def _duplicate_losers(entity: Entity, keys: list[pa.Table]) -> tuple[np.ndarray, np.ndarray]:
    """Lines whose key appears again later in the same file (the later line wins).

    Sorting beats hashing for millions of strings in Arrow. Sort on the most
    selective key column alone (the id, else a timestamp); only rows that tie
    on it can be duplicates, and only those get the full key comparison.
    Returns (losing lines, the winning line for each).
    """
    none = np.array([], dtype=np.int64)
    if not keys:
        return none, none
    table = pa.concat_tables(keys)
    if table.num_rows < 2:
        return none, none
    # A key column that is empty throughout cannot tell rows apart.
    key = [n for n in table.column_names if n != LINE and table[n].null_count < table.num_rows]
    ids = (*entity.key, entity.id_if_given)
    key.sort(key=lambda n: (n not in ids, entity.column(n).kind != "timestamp", n == "account_id"))
    # Missing optional key values compare equal to each other.
    table = pa.table({n: pc.fill_null(table[n], "") if table[n].null_count else table[n] for n in (*key, LINE)})

    first = table[key[0]].combine_chunks()
    ordered_first = first.take(pc.sort_indices(first))
    ties = pc.equal(ordered_first.slice(0, len(first) - 1), ordered_first.slice(1))
    if not pc.any(ties).as_py():
        return none, none
    tied_values = pc.unique(ordered_first.slice(1).filter(ties))
    table = table.filter(pc.is_in(first, value_set=tied_values))

    ordered = table.take(pc.sort_indices(table, sort_keys=[(n, "ascending") for n in (*key, LINE)]))
    same = np.ones(ordered.num_rows - 1, dtype=bool)
    for name in key:
        col = ordered[name].combine_chunks()
        same &= pc.equal(col.slice(0, len(col) - 1), col.slice(1)).to_numpy(zero_copy_only=False)
    if not same.any():
        return none, none
    lines = ordered[LINE].to_numpy()
    loser_pos = np.flatnonzero(same)
    # The winner of a run of equal keys is its last row.
    run_ends = np.flatnonzero(np.append(~same, True))
    winner_pos = run_ends[np.searchsorted(run_ends, loser_pos)]
    return lines[loser_pos], lines[winner_pos]


def _key_match(entity: Entity, key: tuple[str, ...]) -> str:
    """Join condition on the key; optional key columns compare as '' so hash joins work."""
    parts = []
    for name in key:
        if entity.column(name).required:
            parts.append(f'o."{name}" = n."{name}"')
        else:
            parts.append(f"""coalesce(o."{name}"::text, '') = coalesce(n."{name}"::text, '')""")
    return " and ".join(parts)


def _write_rejects(cursor: object, load_id: int, entity: Entity, file_name: str, rejects: pa.Table) -> None:
    if not rejects.num_rows:
        return
    n = rejects.num_rows
    table = pa.table(
        {
            "load_id": pa.array(np.full(n, load_id, dtype=np.int64)),
            "entity": pa.array([entity.name] * n),
            "file_name": pa.array([file_name] * n),
            "line": rejects["line"],
            "column_name": pc.replace_substring(pc.cast(rejects["column_name"], pa.string()), "\x00", "\\x00"),
            "value": pc.replace_substring(pc.cast(rejects["value"], pa.string()), "\x00", "\\x00"),
            "reason": rejects["reason"],
        }
    )
    cursor.copy_expert(  # type: ignore[attr-defined]
        "copy raw.load_rejects (load_id, entity, file_name, line, column_name, value, reason) from stdin with (format csv)",
        io.BytesIO(_to_csv(table)),
    )


def _start_load(engine: sa.Engine, entity: Entity, file_name: str) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.text("insert into raw.loads (entity, file_name, status) values (:e, :f, 'running') returning load_id"),
                {"e": entity.name, "f": file_name},
            ).scalar_one()
        )


def _record_load(conn: sa.Connection, load_id: int, result: FileResult) -> None:
    """Write a load's outcome and counts to raw.loads."""
    conn.execute(
        sa.text(
            """update raw.loads set status = :status, finished_at = now(), rows_read = :read,
               rows_loaded = :loaded, rows_rejected = :rejected, rows_unknown_account = :unknown,
               rows_replaced = :replaced, rows_duplicate = :duplicate, message = :message where load_id = :id"""
        ),
        {
            "status": result.status,
            "read": result.rows_read,
            "loaded": result.rows_loaded,
            "rejected": result.rows_rejected,
            "unknown": result.rows_unknown_account,
            "replaced": result.rows_replaced,
            "duplicate": result.rows_duplicate,
            "message": printable(result.message) or None,
            "id": load_id,
        },
    )


def _reject_file(engine: sa.Engine, load_id: int, result: FileResult, rejects: pa.Table) -> None:
    with engine.begin() as conn:
        _record_load(conn, load_id, result)
        _write_rejects(conn.connection.driver_connection.cursor(), load_id, ENTITIES[result.entity], result.file, rejects)


def _progress_total(path: Path) -> int:
    """Bytes of a CSV file or rows of a Parquet file; 0 when unreadable (reported later)."""
    if path.suffix == ".csv":
        return path.stat().st_size
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowInvalid, OSError):
        return 0


def load_file(
    engine: sa.Engine,
    entity: Entity,
    path: Path,
    known_accounts: pa.Array | None = None,
    progress: Progress | None = None,
) -> FileResult:
    """Load one landing file in one transaction; see the module docstring."""
    file_name = path.name
    load_id = _start_load(engine, entity, file_name)
    total = _progress_total(path)
    on_read = (lambda done: progress(entity.name, done, total)) if progress else (lambda done: None)
    try:
        try:
            result = _load_rows(engine, entity, path, load_id, known_accounts, on_read, exact=False)
        except _NeedsExactRead:
            log.info("%s has malformed rows or multi-line values; reading it again in exact mode", file_name)
            result = _load_rows(engine, entity, path, load_id, known_accounts, on_read, exact=True)
    except FileUnusable as exc:
        return _reject_whole_file(engine, load_id, entity, path, str(exc))
    except (sa.exc.DBAPIError, engine.dialect.dbapi.Error) as exc:
        # The file's transaction rolled back; what the database said goes into the message.
        said = str(getattr(exc, "orig", None) or exc).strip()
        reason = said.splitlines()[0] if said else exc.__class__.__name__
        log.error("%s: the database refused the load: %s", file_name, reason)
        return _reject_whole_file(engine, load_id, entity, path, f"the database refused the load ({reason})")
    except Exception as exc:  # a reader or check that gave up: this file is lost for this run, not the others
        log.exception("%s could not be loaded", file_name)
        return _reject_whole_file(engine, load_id, entity, path, f"could not be loaded ({exc.__class__.__name__}: {exc})")
    on_read(total)
    return result


def _reject_whole_file(engine: sa.Engine, load_id: int, entity: Entity, path: Path, why: str) -> FileResult:
    result = FileResult(entity.name, path.name, "rejected", message=f"{path.name}: {why}")
    reject = pa.table(
        {
            "line": pa.array([1 if path.suffix == ".csv" else None], pa.int64()),
            "column_name": pa.array([None], pa.string()),
            "value": pa.array([None], pa.string()),
            "reason": pa.array([printable(f"file rejected: {why}")]),
        }
    )
    _reject_file(engine, load_id, result, reject)
    return result


def _batches(
    entity: Entity, path: Path, exact: bool, on_read: Callable[[int], None], structural: list[tuple[int, str, str]]
) -> Iterator[_Batch]:
    """The file's rows in batches; exact CSV reading also lists malformed rows in structural."""
    if path.suffix == ".parquet":
        return _read_parquet(path, entity, on_read)
    header = _csv_header(path, entity)
    if exact:
        return _read_csv_exact(path, entity, header, structural)
    return _read_csv_streaming(path, entity, header, on_read)


def _load_rows(
    engine: sa.Engine,
    entity: Entity,
    path: Path,
    load_id: int,
    known: pa.Array | None,
    on_read: Callable[[int], None],
    exact: bool,
) -> FileResult:
    """One file in one transaction: COPY the checked rows, then settle flags, duplicates and rejects."""
    structural: list[tuple[int, str, str]] = []
    batches = _batches(entity, path, exact, on_read, structural)
    with engine.begin() as conn:
        # Naive timestamps in landing files mean UTC (data contract).
        conn.execute(sa.text("set local timezone = 'UTC'"))
        cursor = conn.connection.driver_connection.cursor()
        had_rows = conn.execute(sa.text(f"select exists (select 1 from raw.{entity.name})")).scalar_one()
        if not had_rows:
            # Truncating the (empty) table in this transaction lets COPY write
            # frozen rows and, with wal_level=minimal, skip the WAL.
            conn.execute(sa.text(f"truncate raw.{entity.name}"))
        # A constant default costs nothing per row; load_id is our own integer.
        conn.execute(sa.text(f"alter table raw.{entity.name} alter column {LOAD_ID} set default {int(load_id)}"))
        tally = _copy_stream(cursor, entity, batches, known, freeze=not had_rows)
        conn.execute(sa.text(f"alter table raw.{entity.name} alter column {LOAD_ID} drop default"))
        result = _settle_load(conn, cursor, entity, path.name, load_id, tally, structural, replace_older=had_rows)
        _record_load(conn, load_id, result)
    return result


def _settle_load(
    conn: sa.Connection,
    cursor: object,
    entity: Entity,
    file_name: str,
    load_id: int,
    tally: _Tally,
    structural: list[tuple[int, str, str]],
    replace_older: bool,
) -> FileResult:
    """After the COPY, in its transaction: unknown-account flags, the file's own duplicates,
    rows of earlier loads with the same key, and every reject with its reason."""
    result = FileResult(entity.name, file_name, "loaded")
    unknown = np.concatenate(tally.unknown_lines) if tally.unknown_lines else np.array([], dtype=np.int64)
    if entity.has_account and len(unknown):
        conn.execute(
            sa.text(
                f"update raw.{entity.name} set {UNKNOWN_ACCOUNT} = true "
                f"where {LOAD_ID} = :id and {LINE} = any(:lines)"
            ),
            {"id": load_id, "lines": unknown.tolist()},
        )
    key = tuple(n for n in tally.keys[0].column_names if n != LINE) if tally.keys else entity.full_key
    losers, winners = _duplicate_losers(entity, tally.keys)
    if len(losers):
        conn.execute(
            sa.text(f"delete from raw.{entity.name} where {LOAD_ID} = :id and {LINE} = any(:lines)"),
            {"id": load_id, "lines": losers.tolist()},
        )
        tally.rejects.append(
            pa.table(
                {
                    "line": pa.array(losers),
                    "column_name": pa.array([",".join(key)] * len(losers)),
                    "value": pa.nulls(len(losers), pa.string()),
                    "reason": pc.binary_join_element_wise(
                        "duplicate key; line ", pc.cast(pa.array(winners), pa.string()), " later in the file wins", ""
                    ),
                }
            )
        )
    if replace_older:
        result.rows_replaced = conn.execute(
            sa.text(
                f"delete from raw.{entity.name} o using raw.{entity.name} n "
                f"where n.{LOAD_ID} = :id and o.{LOAD_ID} <> :id and {_key_match(entity, key)}"
            ),
            {"id": load_id},
        ).rowcount
    if structural:
        tally.rejects.append(
            pa.table(
                {
                    "line": pa.array([s[0] for s in structural], pa.int64()),
                    "column_name": pa.nulls(len(structural), pa.string()),
                    "value": pa.array([s[1][:REJECT_VALUE_CHARS] for s in structural]),
                    "reason": pa.array([s[2] for s in structural]),
                }
            )
        )
    rejects = pa.concat_tables(tally.rejects) if tally.rejects else _empty_rejects()
    _write_rejects(cursor, load_id, entity, file_name, rejects)
    result.rows_read = tally.rows_read + len(structural)
    result.rows_loaded = tally.rows_loaded - len(losers)
    result.rows_rejected = tally.rows_rejected + len(structural)
    result.rows_duplicate = len(losers)
    result.rows_unknown_account = len(np.setdiff1d(unknown, losers))
    return result


# --------------------------------------------------------------------------
# A whole landing folder


def find_landing_files(landing_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """Map entity -> file, and list files that are not part of the contract.

    The outcomes file is not ignored: the pipeline imports it (csflow/outcomes.py).
    """
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist")
    found: dict[str, Path] = {}
    ignored: list[str] = []
    for path in sorted(landing_dir.iterdir()):
        if path.suffix not in (".csv", ".parquet") or path.stem not in ENTITIES:
            if path.is_file() and not path.name.startswith(".") and path.name != OUTCOMES_FILE:
                ignored.append(path.name)
            continue
        if path.stem in found:
            raise FileUnusable(
                f"{landing_dir}: both {found[path.stem].name} and {path.name} are present; keep one per entity"
            )
        found[path.stem] = path
    return found, ignored


def _known_accounts(engine: sa.Engine) -> pa.Array:
    with engine.connect() as conn:
        ids = conn.execute(sa.text("select account_id from raw.accounts")).scalars().all()
    return pa.array(ids, pa.string())


def _refresh_unknown_flags(engine: sa.Engine) -> None:
    """Accounts may arrive after rows that named them: clear flags that no longer hold."""
    with engine.begin() as conn:
        for entity in ENTITIES.values():
            if entity.has_account:
                conn.execute(
                    sa.text(
                        f"update raw.{entity.name} t set {UNKNOWN_ACCOUNT} = false "
                        f"where t.{UNKNOWN_ACCOUNT} and exists "
                        f"(select 1 from raw.accounts a where a.account_id = t.account_id)"
                    )
                )


def mark_interrupted_loads(engine: sa.Engine) -> int:
    """Loads left `running` by a crashed ingest: their transactions rolled back, nothing of them is in raw.

    Called while holding the warehouse's run lock, so no other load can be running.
    """
    with engine.begin() as conn:
        return conn.execute(
            sa.text(
                "update raw.loads set status = 'interrupted', finished_at = now(), "
                "message = 'cut short (the ingest stopped before this file finished); nothing of it was kept' "
                "where status = 'running'"
            )
        ).rowcount


def ingest_folder(engine: sa.Engine, landing_dir: Path, progress: Progress | None = None) -> IngestReport:
    """Load every contract file found in landing_dir, accounts first.

    The caller holds the warehouse's run lock (csflow.warehouse.exclusive).
    """
    if interrupted := mark_interrupted_loads(engine):
        log.warning("%d load(s) were cut short by an earlier crash; marked interrupted", interrupted)
    found, ignored = find_landing_files(landing_dir)
    report = IngestReport(ignored=ignored)
    for name in LOAD_ORDER:
        entity = ENTITIES[name]
        if name not in found:
            report.absent.append(name)
            continue
        known = _known_accounts(engine) if entity.has_account else None
        result = load_file(engine, entity, found[name], known, progress)
        report.files.append(result)
        with engine.begin() as conn:
            conn.execute(sa.text(f"analyze raw.{name}"))
    _refresh_unknown_flags(engine)
    return report
