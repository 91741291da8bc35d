"""``lago-async ingest FILE``: send a JSONL or CSV file of events to Lago, resumably.

The file is read in chunks of rows. Each chunk is handed to an event ingestor, flushed (every
event of it settled: delivered, duplicate, rejected or failed), and only then recorded as done
in a checkpoint file, written atomically. A run that is interrupted, however abruptly, resumes
after the last recorded chunk; the rows of the chunk it was in are sent again, and Lago, which
stores each ``transaction_id`` once, counts them as duplicates instead of billing them twice.
Rows without a ``transaction_id`` get one derived from their content
(:func:`lago_async.transaction_id`), so that this holds for them too.

Rows that cannot be sent (not JSON, a required field missing, NaN...), and events Lago
refuses or whose delivery cannot be confirmed, are written with their line number and reason
to a JSONL file. See docs/backfill.md for the options, the files and the exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import attrs
import orjson

from ._client import AsyncLago
from ._errors import LagoError, LagoValidationError
from ._ingest import EventIngestor, IngestStats
from ._txid import transaction_id
from .types import EventInput

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_USAGE",
    "add_arguments",
    "run",
]

EXIT_OK = 0
"""Every row was delivered (or was already in Lago)."""
EXIT_REJECTED = 1
"""The run finished, and some rows were rejected (listed in the rejected file)."""
EXIT_USAGE = 2
"""Nothing was sent: bad options, an unreadable input, a checkpoint of another input..."""
EXIT_FAILED = 3
"""The run stopped because the delivery of some events could not be confirmed (retries ran
out); run the same command again to resume."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (SIGINT) or SIGTERM after settling and recording what was in flight."""

CHECKPOINT_VERSION = 1
_FINGERPRINT_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"
_FIELDS = tuple(a.name for a in attrs.fields(EventInput))
_PROPERTY_PREFIX = "properties."
_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}


class UsageError(Exception):
    """A problem with the command line or its files: reported, nothing sent, exit 2."""


# -- reading rows ---------------------------------------------------------------------------


@dataclass
class Row:
    """One input record: the event to send, or why it cannot be."""

    line: int
    """Line number (1-based) where the record starts."""
    end: int
    """Byte offset just after the record."""
    last_line: int
    """Line number of the record's last line (a quoted CSV cell may hold line breaks)."""
    event: dict[str, Any] | None = None
    error: str | None = None
    raw: Any = None
    """The record as read, kept for the rejected file when it could not be parsed."""


class _Lines:
    """Text lines of a binary stream, counting the bytes consumed (for the checkpoint)."""

    def __init__(self, stream: IO[bytes], offset: int) -> None:
        self.stream = stream
        self.offset = offset

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self.stream.readline()
        if not raw:
            raise StopIteration
        if self.offset == 0 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
            self.offset += len(_BOM)
        self.offset += len(raw)
        # Bytes that are not UTF-8 survive as surrogates; the row is then refused as such.
        return raw.decode("utf-8", "surrogateescape")


def read_jsonl(stream: IO[bytes], offset: int = 0, line: int = 0) -> Iterator[Row]:
    """Rows of a JSON Lines stream read from ``offset`` (just after line ``line``).

    Blank lines are skipped; every other line must be a JSON object (RFC 8259 JSON: ``NaN``
    and ``Infinity`` are not JSON).
    """
    first = offset == 0
    for raw in stream:
        line += 1
        offset += len(raw)
        if first:
            first = False
            if raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
        text = raw.strip()
        if not text:
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield Row(line, offset, line, error=f"not valid JSON: {exc}", raw=_printable(text))
            continue
        if not isinstance(value, dict):
            yield Row(
                line,
                offset,
                line,
                error=f"not a JSON object (a {type(value).__name__})",
                raw=_printable(text),
            )
            continue
        yield Row(line, offset, line, event=value)


def csv_header(stream: IO[bytes]) -> tuple[list[str], int, int]:
    """The CSV header's column names, the byte offset after it and its line count.

    Every column must be an event field (``transaction_id``, ``code``,
    ``external_subscription_id``, ``timestamp``, ``precise_total_amount_cents``,
    ``properties``) or ``properties.<name>``: anything else is a :class:`UsageError`, so that
    no column is dropped unnoticed.
    """
    lines = _Lines(stream, 0)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise UsageError("the CSV input is empty: a header line is required") from None
    names = [name.strip() for name in header]
    unknown = [
        name
        for name in names
        if name not in _FIELDS and not (name.startswith(_PROPERTY_PREFIX) and name[11:])
    ]
    if unknown:
        raise UsageError(
            f"unknown CSV column(s) {', '.join(map(repr, unknown))}: columns are event fields "
            f"({', '.join(_FIELDS)}) or properties.<name>"
        )
    seen = set()
    for name in names:
        if name in seen:
            raise UsageError(f"the CSV column {name!r} appears twice")
        seen.add(name)
    for required in ("code", "external_subscription_id"):
        if required not in seen:
            raise UsageError(f"the CSV header has no {required!r} column")
    return names, lines.offset, reader.line_num


def read_csv(stream: IO[bytes], header: list[str], offset: int, line: int) -> Iterator[Row]:
    """Rows of a CSV stream positioned at ``offset`` (after line ``line``), after its header.

    Empty cells are absent fields. Cells are strings, as written, except the ``properties``
    column, a JSON object; ``properties.<name>`` cells add property ``<name>`` (a string).
    """
    lines = _Lines(stream, offset)
    reader = csv.reader(lines)
    while True:
        start = line + reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(start, lines.offset, line + reader.line_num, error=f"not valid CSV: {exc}")
            continue
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # a blank line
        yield _csv_row(header, cells, Row(start, lines.offset, line + reader.line_num))


def _csv_row(header: list[str], cells: list[str], row: Row) -> Row:
    """``row`` with the event the cells hold, or with why they hold none."""

    def bad(error: str, raw: Any = cells) -> Row:
        row.error, row.raw = error, raw
        return row

    if len(cells) != len(header):
        return bad(f"{len(cells)} cells for {len(header)} columns")
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return bad("not valid UTF-8", [_printable(c) for c in cells])
    event: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for name, cell in zip(header, cells, strict=True):
        if cell == "":
            continue
        if name == "properties":
            try:
                value = orjson.loads(cell)
            except orjson.JSONDecodeError as exc:
                return bad(f"properties: not valid JSON: {exc}")
            if not isinstance(value, dict):
                return bad("properties: not a JSON object")
            for key, item in value.items():
                if key in properties:
                    return bad(f"property {key!r} given twice")
                properties[key] = item
        elif name.startswith(_PROPERTY_PREFIX):
            key = name[len(_PROPERTY_PREFIX) :]
            if key in properties:
                return bad(f"property {key!r} given twice")
            properties[key] = cell
        else:
            event[name] = cell
    if properties:
        event["properties"] = properties
    row.event = event
    return row


def _printable(text: bytes | str) -> str:
    if isinstance(text, bytes):
        return text.decode("utf-8", "replace")
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


# -- files ----------------------------------------------------------------------------------


def fingerprint(path: Path) -> dict[str, Any]:
    """What identifies an input file: its size and a hash of its first megabyte."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        digest.update(stream.read(_FINGERPRINT_BYTES))
    return {"size": path.stat().st_size, "head_sha256": digest.hexdigest()}


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temp.open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temp, path)
    with contextlib.suppress(OSError):  # not every system can open a directory (Windows)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


@dataclass
class Totals:
    """Outcomes over the whole backfill, every run that resumed it included."""

    rows: int = 0
    delivered: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "delivered": self.delivered,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "failed": self.failed,
        }


@dataclass
class Checkpoint:
    """Where a backfill stands: every row before ``offset`` is settled and recorded."""

    input: dict[str, Any]
    format: str
    ids: str
    offset: int = 0
    line: int = 0
    rejected_bytes: int = 0
    totals: Totals = field(default_factory=Totals)

    def dump(self) -> bytes:
        return orjson.dumps(
            {
                "version": CHECKPOINT_VERSION,
                "input": self.input,
                "format": self.format,
                "ids": self.ids,
                "offset": self.offset,
                "line": self.line,
                "rejected_bytes": self.rejected_bytes,
                "totals": self.totals.as_dict(),
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            data = orjson.loads(path.read_bytes())
            if data.get("version") != CHECKPOINT_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            return cls(
                input=dict(data["input"]),
                format=str(data["format"]),
                ids=str(data["ids"]),
                offset=int(data["offset"]),
                line=int(data["line"]),
                rejected_bytes=int(data["rejected_bytes"]),
                totals=Totals(**{k: int(v) for k, v in data["totals"].items()}),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"cannot read the checkpoint {path} ({exc}); remove it or pass --restart"
            ) from None


# -- progress -------------------------------------------------------------------------------


class Progress:
    """Shows the backfill's progress from the ingestor's ``on_progress`` snapshots.

    Draws a ``rich`` progress bar on a terminal when ``rich`` is installed (the ``cli``
    extra); otherwise writes a plain line every time it is called.
    """

    def __init__(
        self,
        *,
        total_bytes: int | None,
        base: Totals,
        invalid: Callable[[], int],
        position: Callable[[], int],
        mode: str,
        stream: IO[str],
    ) -> None:
        self.total_bytes = total_bytes
        self.base = base
        self.invalid = invalid
        self.position = position
        self.stream = stream
        self.started = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        if mode == "rich":
            self._start_rich()

    @staticmethod
    def choose(requested: str, stream: IO[str]) -> str:
        """``rich``, ``plain`` or ``off``: ``auto`` means rich on a terminal when installed."""
        if requested not in ("auto", "rich"):
            return requested
        try:
            import rich  # noqa: F401
        except ImportError:
            if requested == "rich":
                raise UsageError(
                    '--progress rich needs rich: pip install "lago-async[cli]"'
                ) from None
            return "plain"
        return "rich" if requested == "rich" or stream.isatty() else "plain"

    def _start_rich(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"),
            console=Console(file=self.stream),
            auto_refresh=False,
        )
        self._task = self._bar.add_task("ingest", total=self.total_bytes, counts="")
        self._bar.start()

    def figures(self, stats: IngestStats) -> dict[str, float]:
        """Totals so far (earlier runs included) and this run's events per second."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return {
            "rate": stats.settled / elapsed,
            "delivered": self.base.delivered + stats.delivered,
            "duplicates": self.base.duplicates + stats.duplicates,
            "rejected": self.base.rejected + stats.rejected + self.invalid(),
            "failed": stats.failed,
        }

    def line(self, stats: IngestStats) -> str:
        """One line of progress."""
        f = self.figures(stats)
        done = ""
        if self.total_bytes:
            done = f"{100 * self.position() / self.total_bytes:5.1f}%  "
        return (
            f"{done}{f['rate']:,.0f} events/s  delivered {f['delivered']:,.0f}  "
            f"duplicates {f['duplicates']:,.0f}  rejected {f['rejected']:,.0f}  "
            f"failed {f['failed']:,.0f}"
        )

    def __call__(self, stats: IngestStats) -> None:
        if self._bar is not None:
            f = self.figures(stats)
            counts = (
                f"{f['rate']:,.0f} events/s · delivered {f['delivered']:,.0f} · "
                f"duplicates {f['duplicates']:,.0f} · rejected {f['rejected']:,.0f} · "
                f"failed {f['failed']:,.0f}"
            )
            self._bar.update(self._task, completed=self.position(), counts=counts)
            self._bar.refresh()
        else:
            self.stream.write(f"lago-async ingest: {self.line(stats)}\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


# -- the command ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ingest`` subcommand's options."""
    parser.add_argument("input", help="a JSONL or CSV file of events, or - for standard input")
    parser.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="the input's format (default: from the file's extension; jsonl for -)",
    )
    parser.add_argument(
        "--api-url",
        metavar="URL",
        help="the Lago API root, ending in /api/v1 (default: $LAGO_API_URL)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="the API key (default: $LAGO_API_KEY, which other users cannot see in ps)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help="the checkpoint file (default: INPUT.checkpoint.json next to the input)",
    )
    parser.add_argument(
        "--rejected",
        type=Path,
        metavar="PATH",
        help="where rejected and failed rows go (default: INPUT.rejected.jsonl; "
        "stdin.rejected.jsonl in the current folder for -)",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="ignore (and replace) an existing checkpoint: start again from the first row",
    )
    parser.add_argument(
        "--ids-include-line",
        action="store_true",
        help="mix the line number into derived transaction ids, so that identical rows are "
        "billed separately (a re-run is then safe only on the unchanged file)",
    )
    parser.add_argument(
        "--chunk-size",
        type=_positive_int,
        metavar="N",
        default=5_000,
        help="rows settled between two checkpoints (default: 5000)",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, metavar="N", help="events per request (default: 100)"
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        default=8,
        help="requests at once (default: 8)",
    )
    parser.add_argument(
        "--max-retries",
        type=_non_negative_int,
        metavar="N",
        default=10,
        help="retries of one batch before its events count as failed (default: 10)",
    )
    parser.add_argument(
        "--retry-delay",
        type=_positive_float,
        metavar="SECONDS",
        default=0.5,
        help="seconds before the first retry; the delay doubles each time (default: 0.5)",
    )
    parser.add_argument(
        "--max-retry-delay",
        type=_positive_float,
        metavar="SECONDS",
        default=8.0,
        help="the longest delay between two retries, in seconds (default: 8)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "off"),
        default="auto",
        help="progress display on stderr (default: auto, a bar on a terminal when rich is "
        "installed, plain lines otherwise)",
    )
    parser.add_argument(
        "--progress-interval",
        type=_positive_float,
        metavar="SECONDS",
        help="seconds between two progress updates (default: 0.2 for the bar, 5 for lines)",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


@dataclass
class _Plan:
    """What one run does, resolved from the options and the files."""

    stdin: bool
    path: Path | None
    format: str
    checkpoint_path: Path | None
    rejected_path: Path
    checkpoint: Checkpoint


def _plan(args: argparse.Namespace) -> _Plan:
    stdin = args.input == "-"
    path = None if stdin else Path(args.input)
    if path is not None:
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        fmt = args.format or _FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise UsageError(
                f"cannot tell the format of {path.name} from its extension: pass --format"
            )
    else:
        fmt = args.format or "jsonl"
        if args.checkpoint is not None:
            raise UsageError("standard input cannot be resumed: --checkpoint needs a file")
    ids = "content+line" if args.ids_include_line else "content"
    rejected = args.rejected
    if rejected is None:
        rejected = Path("stdin.rejected.jsonl") if path is None else _beside(path, "rejected.jsonl")
    if path is None:
        return _Plan(True, None, fmt, None, rejected, Checkpoint({}, fmt, ids))
    checkpoint_path = args.checkpoint or _beside(path, "checkpoint.json")
    fresh = Checkpoint(fingerprint(path), fmt, ids)
    if args.restart or not checkpoint_path.exists():
        return _Plan(False, path, fmt, checkpoint_path, rejected, fresh)
    saved = Checkpoint.load(checkpoint_path)
    if saved.input != fresh.input:
        raise UsageError(
            f"the checkpoint {checkpoint_path} belongs to another input (or {path.name} "
            "changed since): pass --restart to start again from the first row, or "
            "--checkpoint to use another checkpoint file"
        )
    for what, then, now in (("format", saved.format, fmt), ("ids", saved.ids, ids)):
        if then != now:
            hint = " (--ids-include-line)" if what == "ids" else ""
            raise UsageError(
                f"the checkpoint {checkpoint_path} was made with {what} {then!r}, not "
                f"{now!r}{hint}: resume with the same options, or pass --restart"
            )
    return _Plan(False, path, fmt, checkpoint_path, rejected, saved)


def _beside(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.name}.{suffix}")


class _Backfill:
    """One run: reads rows, sends them in chunks, settles and records each chunk."""

    def __init__(self, args: argparse.Namespace, plan: _Plan, out: IO[str], err: IO[str]):
        self.args = args
        self.plan = plan
        self.out = out
        self.err = err
        self.totals = plan.checkpoint.totals
        self.base = Totals(**self.totals.as_dict())
        self.position = plan.checkpoint.offset
        self.invalid_this_run = 0
        self.first_failure: str | None = None
        self.stop_requested = False
        """Set by SIGINT/SIGTERM: settle and record the chunk under way, then stop."""
        self.complete = False
        """Every row was read and settled, none failed."""
        self.progress_mode = Progress.choose(args.progress, err)
        try:
            # Built here, before any file is opened; its connections open in the event loop.
            self.lago = AsyncLago(
                api_key=args.api_key or None,
                base_url=args.api_url or None,
                initial_retry_delay=args.retry_delay,
                max_retry_backoff=max(args.max_retry_delay, args.retry_delay),
            )
        except LagoError as exc:
            raise UsageError(str(exc)) from None
        if args.batch_size is not None and args.batch_size > self.lago.batch_limit:
            raise UsageError(
                f"--batch-size must be at most the batch limit, {self.lago.batch_limit}"
            )
        self.started = time.monotonic()
        self._seen_rejected = 0  # entries of ingest.rejected / .failed already written
        self._seen_failed = 0
        self._rows_before = 0  # rows of the chunks settled in this run

    # rows --------------------------------------------------------------------------------

    def rows(self, stream: IO[bytes]) -> Iterator[Row]:
        checkpoint = self.plan.checkpoint
        if self.plan.format == "jsonl":
            if checkpoint.offset:
                stream.seek(checkpoint.offset)
            return read_jsonl(stream, checkpoint.offset, checkpoint.line)
        header, after_header, header_lines = csv_header(stream)
        offset, line = checkpoint.offset, checkpoint.line
        if offset:
            stream.seek(offset)
        else:
            offset, line = after_header, header_lines
        return read_csv(stream, header, offset, line)

    # the run -----------------------------------------------------------------------------

    async def run(self, rows: Iterator[Row], rejected: IO[bytes]) -> int:
        args = self.args
        lago = self.lago
        mode = self.progress_mode
        interval = args.progress_interval or (0.2 if mode == "rich" else 5.0)
        size = self.plan.checkpoint.input.get("size")
        progress = Progress(
            total_bytes=size,
            base=self.base,
            invalid=lambda: self.invalid_this_run,
            position=lambda: self.position,
            mode=mode,
            stream=self.err,
        )
        try:
            async with lago:
                ingest = lago.events.ingestor(
                    batch_size=args.batch_size,
                    max_in_flight=args.concurrency,
                    max_retries=args.max_retries,
                    on_progress=None if mode == "off" else progress,
                    progress_interval=interval,
                )
                async with ingest:
                    await self._send_all(ingest, rows, rejected)
        finally:
            progress.close()
        return self._finish()

    async def _send_all(
        self, ingest: EventIngestor, rows: Iterator[Row], rejected: IO[bytes]
    ) -> None:
        include_line = self.plan.checkpoint.ids == "content+line"
        chunk_size = self.args.chunk_size
        lines: dict[tuple[str, str], list[int]] = {}
        bad: list[dict[str, Any]] = []
        count = 0
        last: Row | None = None
        for row in rows:
            last = row
            event = row.event
            if event is None:
                bad.append(_entry(row.line, "invalid", row.error, raw=row.raw))
                self.invalid_this_run += 1
            else:
                try:
                    key = _prepare(event, row.line if include_line else None)
                    await ingest.send(event)
                except LagoValidationError as exc:
                    bad.append(_entry(row.line, "invalid", str(exc), event=event))
                    self.invalid_this_run += 1
                else:
                    lines.setdefault(key, []).append(row.line)
            count += 1
            self.position = row.end
            if count >= chunk_size or self.stop_requested:
                if not await self._settle(ingest, rejected, lines, bad, count, row):
                    return
                lines, bad, count = {}, [], 0
                if self.stop_requested:
                    return
        if last is not None and count:
            await self._settle(ingest, rejected, lines, bad, count, last)
        self.complete = not self.totals.failed

    async def _settle(
        self,
        ingest: EventIngestor,
        rejected: IO[bytes],
        lines: dict[tuple[str, str], list[int]],
        bad: list[dict[str, Any]],
        count: int,
        last: Row,
    ) -> bool:
        """Flush, write the chunk's rejected rows, record the chunk; False to stop the run."""
        await ingest.flush()
        stats = ingest.stats
        entries = bad
        for refused in ingest.rejected[self._seen_rejected :]:
            line = _line_of(lines, refused.event)
            entries.append(_entry(line, "rejected", refused.details, event=refused.event))
        for failed in ingest.failed[self._seen_failed :]:
            line = _line_of(lines, failed.event)
            entries.append(_entry(line, "failed", failed.reason, event=failed.event))
            self.first_failure = self.first_failure or failed.reason
        self._seen_rejected = len(ingest.rejected)
        self._seen_failed = len(ingest.failed)
        if entries:
            entries.sort(key=lambda e: e["line"] if e["line"] is not None else -1)
            rejected.write(b"".join(orjson.dumps(e) + b"\n" for e in entries))
            rejected.flush()
            os.fsync(rejected.fileno())
        totals = self.totals
        totals.rows = self.base.rows + self._rows_before + count
        self._rows_before += count
        totals.delivered = self.base.delivered + stats.delivered
        totals.duplicates = self.base.duplicates + stats.duplicates
        totals.rejected = self.base.rejected + stats.rejected + self.invalid_this_run
        totals.failed = stats.failed
        if stats.failed:
            return False  # not recorded: a resume sends this chunk again
        checkpoint = self.plan.checkpoint
        checkpoint.offset = last.end
        checkpoint.line = last.last_line
        checkpoint.rejected_bytes = rejected.tell()
        if self.plan.checkpoint_path is not None:
            write_atomically(self.plan.checkpoint_path, checkpoint.dump())
        return True

    def _finish(self) -> int:
        totals = self.totals
        elapsed = time.monotonic() - self.started
        if self.complete and self.plan.checkpoint_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.plan.checkpoint_path.unlink()
        sent = totals.delivered + totals.duplicates - self.base.delivered - self.base.duplicates
        resumed = f" (resumed after row {self.base.rows:,})" if self.base.rows else ""
        print(
            f"lago-async ingest: {totals.rows:,} rows read{resumed}, "
            f"{sent / max(elapsed, 1e-9):,.0f} events/s this run\n"
            f"  delivered   {totals.delivered:>10,}\n"
            f"  duplicates  {totals.duplicates:>10,}  already in Lago (sent before)\n"
            f"  rejected    {totals.rejected:>10,}  invalid rows and events Lago refused\n"
            f"  failed      {totals.failed:>10,}  delivery not confirmed",
            file=self.out,
        )
        if totals.rejected or totals.failed:
            print(f"  rows not sent are listed in {self.plan.rejected_path}", file=self.out)
        if totals.failed:
            print(
                f"stopped: delivery failed ({self.first_failure}); run the same command "
                "again to resume",
                file=self.out,
            )
            return EXIT_FAILED
        if not self.complete:
            print(
                f"interrupted after row {totals.rows:,}; run the same command again to resume",
                file=self.out,
            )
            return EXIT_INTERRUPTED
        return EXIT_REJECTED if totals.rejected else EXIT_OK


def _prepare(event: dict[str, Any], line: int | None) -> tuple[str, str]:
    """Give the event a derived ``transaction_id`` when it has none; its dedup key.

    Raises :class:`LagoValidationError` for a missing required field (the ingestor's checks
    catch the rest when the event is sent).
    """
    for required in ("code", "external_subscription_id"):
        if event.get(required) in (None, ""):
            raise LagoValidationError(required, "is missing")
    tx = event.get("transaction_id")
    if tx is None or tx == "":
        event.pop("transaction_id", None)
        salt = None if line is None else f"line {line}"
        tx = event["transaction_id"] = transaction_id(event, salt=salt)
    return (str(event.get("external_subscription_id")), str(tx))


def _line_of(lines: dict[tuple[str, str], list[int]], event: dict[str, Any]) -> int | None:
    key = (str(event.get("external_subscription_id")), str(event.get("transaction_id")))
    found = lines.get(key)
    return found.pop(0) if found else None


def _entry(
    line: int | None, outcome: str, reason: Any, *, event: Any = None, raw: Any = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"line": line, "outcome": outcome, "reason": reason}
    if event is not None:
        entry["event"] = event
    if raw is not None:
        entry["raw"] = raw
    return entry


def run(args: argparse.Namespace, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Run ``ingest`` with parsed ``args``; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        plan = _plan(args)
        backfill = _Backfill(args, plan, out, err)
        with _open_input(plan) as stream:
            rows = backfill.rows(stream)  # a CSV header is checked here, before anything else
            with _open_rejected(plan) as rejected:
                return asyncio.run(_main(backfill, rows, rejected))
    except UsageError as exc:
        print(f"lago-async ingest: error: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lago-async ingest: interrupted; run the same command again to resume", file=err)
        return EXIT_INTERRUPTED


async def _main(backfill: _Backfill, rows: Iterator[Row], rejected: IO[bytes]) -> int:
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        # The first signal finishes the chunk in flight and records it; a second SIGINT
        # stops at once (Python's default handler is back).
        backfill.stop_requested = True
        loop.remove_signal_handler(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop, signum)
    return await backfill.run(rows, rejected)


@contextlib.contextmanager
def _open_input(plan: _Plan) -> Iterator[IO[bytes]]:
    if plan.path is None:
        yield sys.stdin.buffer
        return
    try:
        stream = plan.path.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot read {plan.path}: {exc}") from None
    with stream:
        yield stream


@contextlib.contextmanager
def _open_rejected(plan: _Plan) -> Iterator[IO[bytes]]:
    path = plan.rejected_path
    keep = plan.checkpoint.rejected_bytes
    size = path.stat().st_size if path.exists() else 0
    if keep > size:
        print(
            f"lago-async ingest: warning: {path} lost entries since the checkpoint "
            f"({size} of {keep} bytes left)",
            file=sys.stderr,
        )
        keep = size
    try:
        stream = path.open("r+b" if keep and path.exists() else "w+b")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from None
    with stream:
        # Entries past the checkpoint belong to rows that will be read again: drop them.
        stream.truncate(keep)
        stream.seek(keep)
        yield stream
    if os.path.exists(path) and os.path.getsize(path) == 0:
        with contextlib.suppress(OSError):
            path.unlink()  # nothing to report
