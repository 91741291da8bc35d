"""``lago-async ingest`` in this process against a FakeLago: outcomes, files and exit codes."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from lago_async import IngestStats, __version__, transaction_id
from lago_async.__main__ import main
from lago_async._backfill import Checkpoint, Progress, Totals, UsageError, fingerprint
from lago_async.testing import FakeLago

from .conftest import Run, event, jsonl, read_rejected, stored

BATCH = "POST /events/batch"


def test_a_jsonl_file_is_delivered_once_with_derived_ids_for_rows_without_one(
    run: Run, fake: FakeLago, tmp_path: Path
) -> None:
    rows = [event(n) for n in range(250)]
    for n in range(0, 250, 10):
        del rows[n]["transaction_id"]
    rows[5]["transaction_id"] = ""  # an empty id counts as none
    path = jsonl(tmp_path / "events.jsonl", rows)

    result = run(str(path), "--chunk-size", "60", "--batch-size", "25")

    assert result.status == 0, result
    derived = {
        transaction_id({k: v for k, v in row.items() if k != "transaction_id"})
        for row in rows
        if not row.get("transaction_id")
    }
    expected = {row["transaction_id"] for row in rows if row.get("transaction_id")} | derived
    assert len(derived) == 26
    assert set(stored(fake)) == expected
    assert max(stored(fake).values()) == 1
    assert "delivered          250" in result.out
    # A finished backfill leaves no checkpoint, and nothing was rejected: no rejected file.
    assert not (tmp_path / "events.jsonl.checkpoint.json").exists()
    assert not (tmp_path / "events.jsonl.rejected.jsonl").exists()


def test_running_a_finished_backfill_again_bills_nothing_twice(
    run: Run, fake: FakeLago, tmp_path: Path
) -> None:
    rows = [{k: v for k, v in event(n).items() if k != "transaction_id"} for n in range(120)]
    path = jsonl(tmp_path / "events.jsonl", rows)
    assert run(str(path)).status == 0
    again = run(str(path))
    assert again.status == 0
    assert "duplicates         120" in again.out
    assert len(fake.events) == 120
    assert max(stored(fake).values()) == 1


def test_bad_rows_are_listed_with_their_line_and_reason_and_the_status_is_1(
    run: Run, fake: FakeLago, tmp_path: Path
) -> None:
    path = jsonl(
        tmp_path / "events.jsonl",
        [
            event(1),
            "not json",  # line 2
            '{"transaction_id": "tx-n", "code": "c", "external_subscription_id": "s", '
            '"properties": {"units": NaN}}',  # line 3: NaN is not JSON
            {"transaction_id": "tx-4", "external_subscription_id": "sub_1"},  # no code
            event(5, properties="3 units"),  # properties must be an object
            "",  # a blank line is skipped
            event(7, timestamp=10**15),  # refused by Lago: beyond year 9999
            "[1, 2]",  # line 8: not an object
            event(9, transaction_id=42),  # an id must be a string
            event(10),
        ],
    )

    result = run(str(path), "--chunk-size", "4")

    assert result.status == 1, result
    assert set(stored(fake)) == {"tx-1", "tx-10"}
    entries = read_rejected(tmp_path / "events.jsonl.rejected.jsonl")
    assert [(e["line"], e["outcome"]) for e in entries] == [
        (2, "invalid"),
        (3, "invalid"),
        (4, "invalid"),
        (5, "invalid"),
        (7, "rejected"),
        (8, "invalid"),
        (9, "invalid"),
    ]
    reasons = {e["line"]: e["reason"] for e in entries}
    assert "not valid JSON" in reasons[2]
    assert "not valid JSON" in reasons[3]
    assert reasons[4] == "code: is missing"
    assert "properties" in reasons[5]
    assert reasons[7] == {"timestamp": ["invalid_value"]}
    assert "not a JSON object" in reasons[8]
    assert "transaction_id" in reasons[9]
    assert entries[0]["raw"] == "not json"
    assert entries[4]["event"] == event(7, timestamp=10**15)
    assert "rejected             7" in result.out


CSV = (
    "\ufefftransaction_id,code,external_subscription_id,timestamp,properties,properties.region\n"
    'tx-1,api_calls,sub_1,1700000000,"{""units"": 3}",eu\n'
    ',storage,sub_2,1700000001,,"us\n'
    'east"\n'  # a quoted cell spanning two lines: the next record starts on line 5
    "tx-3,api_calls,sub_1,,,\n"
    'tx-4,api_calls,sub_1,,"{""region"": ""x""}",eu\n'  # line 6: region given twice
    "tx-5,api_calls\n"  # line 7: two cells for six columns
    "\n"
    "tx-8,,sub_1,1,,\n"  # line 9: no code
)


def test_csv_columns_map_to_event_fields(run: Run, fake: FakeLago, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(CSV, encoding="utf-8")

    result = run(str(path))

    assert result.status == 1, result
    by_id = {e["transaction_id"]: e for e in fake.events}
    derived = transaction_id(
        {
            "code": "storage",
            "external_subscription_id": "sub_2",
            "timestamp": "1700000001",
            "properties": {"region": "us\neast"},
        }
    )
    assert set(by_id) == {"tx-1", derived, "tx-3"}
    assert by_id["tx-1"]["properties"] == {"units": 3, "region": "eu"}
    assert by_id[derived]["properties"] == {"region": "us\neast"}
    assert by_id["tx-3"]["properties"] == {}  # empty cells are absent fields
    entries = read_rejected(tmp_path / "events.csv.rejected.jsonl")
    assert [(e["line"], e["outcome"]) for e in entries] == [
        (6, "invalid"),
        (7, "invalid"),
        (9, "invalid"),
    ]
    assert entries[0]["reason"] == "property 'region' given twice"
    assert entries[1]["reason"] == "2 cells for 6 columns"
    assert entries[2]["reason"] == "code: is missing"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("code,external_subscription_id,units\n", "unknown CSV column(s) 'units'"),
        ("code,code,external_subscription_id\n", "appears twice"),
        ("transaction_id,code\n", "no 'external_subscription_id' column"),
        ("", "a header line is required"),
    ],
)
def test_a_csv_header_that_cannot_be_mapped_is_a_usage_error(
    run: Run, fake: FakeLago, tmp_path: Path, header: str, message: str
) -> None:
    path = tmp_path / "events.csv"
    path.write_text(header + "a,b,c\n" if header else "")
    result = run(str(path))
    assert result.status == 2
    assert message in result.err
    assert result.err.startswith("lago-async ingest: error:")  # found before connecting
    assert fake.events == []
    assert not (tmp_path / "events.csv.rejected.jsonl").exists()


def test_standard_input_in_either_format(
    run: Run, fake: FakeLago, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lines = b"".join(orjson.dumps(event(n)) + b"\n" for n in range(30)) + b"oops\n"
    result = run("-", stdin=lines)
    assert result.status == 1, result
    assert set(stored(fake)) == {f"tx-{n}" for n in range(30)}
    assert [e["line"] for e in read_rejected(tmp_path / "stdin.rejected.jsonl")] == [31]

    csv_rows = b"transaction_id,code,external_subscription_id\ntx-c1,api_calls,sub_1\n"
    result = run("-", "--format", "csv", "--rejected", "csv.rejected.jsonl", stdin=csv_rows)
    assert result.status == 0, result
    assert "tx-c1" in stored(fake)
    assert not (tmp_path / "csv.rejected.jsonl").exists()


def test_a_checkpoint_of_another_input_is_refused(run: Run, fake: FakeLago, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "events.jsonl", [event(n) for n in range(10)])
    checkpoint = tmp_path / "events.jsonl.checkpoint.json"
    checkpoint.write_bytes(Checkpoint(fingerprint(path), "jsonl", "content").dump())
    jsonl(path, [event(n) for n in range(11)])  # the file changed since

    result = run(str(path))
    assert result.status == 2
    assert "belongs to another input" in result.err
    assert fake.events == []

    # Derived ids made another way would bill the re-sent rows twice: refused too.
    checkpoint.write_bytes(Checkpoint(fingerprint(path), "jsonl", "content").dump())
    result = run(str(path), "--ids-include-line")
    assert result.status == 2
    assert "--ids-include-line" in result.err
    assert fake.events == []

    result = run(str(path), "--restart")
    assert result.status == 0
    assert len(fake.events) == 11


def test_a_resume_skips_the_settled_rows_and_keeps_their_rejected_entries(
    run: Run, fake: FakeLago, tmp_path: Path
) -> None:
    rows = [event(n) for n in range(20)]
    path = jsonl(tmp_path / "events.jsonl", rows)
    settled = sum(len(orjson.dumps(row)) + 1 for row in rows[:5])  # bytes of lines 1-5
    rejected = tmp_path / "events.jsonl.rejected.jsonl"
    kept = b'{"line":3,"outcome":"invalid","reason":"from the first run"}\n'
    rejected.write_bytes(kept + b'{"line":9,"outcome":"failed","reason":"after the checkpoint"}\n')
    checkpoint = Checkpoint(
        fingerprint(path),
        "jsonl",
        "content",
        offset=settled,
        line=5,
        rejected_bytes=len(kept),
        totals=Totals(rows=5, delivered=4, rejected=1),
    )
    (tmp_path / "events.jsonl.checkpoint.json").write_bytes(checkpoint.dump())

    result = run(str(path))

    assert result.status == 1  # the first run's rejected row still counts
    assert set(stored(fake)) == {f"tx-{n}" for n in range(5, 20)}
    assert "20 rows read (resumed after row 5)" in result.out
    assert "delivered           19" in result.out
    assert rejected.read_bytes() == kept


def test_failed_delivery_stops_with_status_3_and_a_rerun_resumes(
    run: Run, fake: FakeLago, tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "events.jsonl", [event(n) for n in range(50)])
    secret = "wrong-key-0123456789"

    result = run(str(path), "--api-key", secret, "--chunk-size", "20")

    assert result.status == 3, result
    assert "run the same command again to resume" in result.out
    assert fake.events == []
    rejected = tmp_path / "events.jsonl.rejected.jsonl"
    entries = read_rejected(rejected)
    # The run stopped after its first chunk: its rows are listed, none after them.
    assert [e["line"] for e in entries] == list(range(1, 21))
    assert {e["outcome"] for e in entries} == {"failed"}
    assert "401" in entries[0]["reason"]
    assert secret not in result.out + result.err + rejected.read_text()

    result = run(str(path), "--chunk-size", "20")
    assert result.status == 0, result
    assert set(stored(fake)) == {f"tx-{n}" for n in range(50)}
    assert not rejected.exists()


def test_a_csv_backfill_resumes_after_failed_delivery(
    run: Run, fake: FakeLago, tmp_path: Path
) -> None:
    records = [
        'tx-1,api_calls,sub_1,"one\nline"',
        *(f"tx-{n},api_calls,sub_1,x" for n in range(2, 21)),
    ]
    path = tmp_path / "events.csv"
    path.write_text("transaction_id,code,external_subscription_id,properties.note\n")
    with path.open("a") as stream:
        stream.write("".join(record + "\n" for record in records))
    # Line of each record: the header is line 1, the first record spans lines 2 and 3.
    lines = [2, *range(4, 23)]
    checkpoint = tmp_path / "events.csv.checkpoint.json"
    # Lago stops answering once the first chunk is recorded.
    fake.faults.latency(0.02, route=BATCH)

    def break_lago() -> None:
        while not checkpoint.exists():
            time.sleep(0.001)
        fake.faults.add(route=BATCH, status=503)

    breaker = threading.Thread(target=break_lago, daemon=True)
    breaker.start()
    options = ["--chunk-size", "4", "--batch-size", "2", "--concurrency", "1"]
    result = run(str(path), *options, "--max-retries", "0")
    breaker.join(timeout=10)

    assert result.status == 3, result
    saved = orjson.loads(checkpoint.read_bytes())
    done = saved["totals"]["rows"]
    assert done in (4, 8, 12, 16)
    assert saved["line"] == lines[done - 1]
    # The next chunk's events failed (a batch already under way when Lago broke may have
    # gone through); nothing after that chunk was sent.
    entries = read_rejected(tmp_path / "events.csv.rejected.jsonl")
    failed = [e["line"] for e in entries]
    assert {e["outcome"] for e in entries} == {"failed"}
    assert failed and set(failed) <= set(lines[done : done + 4])
    assert len(fake.events) == done + 4 - len(failed)

    fake.faults.clear()
    result = run(str(path), *options)
    assert result.status == 0, result
    assert f"20 rows read (resumed after row {done})" in result.out
    # Only the unrecorded chunk's delivered rows come back as duplicates: the recorded rows
    # were not sent again.
    assert f"duplicates  {4 - len(failed):>10,}" in result.out
    assert set(stored(fake)) == {f"tx-{n}" for n in range(1, 21)}
    assert max(stored(fake).values()) == 1
    assert fake.events[0]["properties"] == {"note": "one\nline"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "no such file"),
        (["events.txt"], "pass --format"),
        (["-", "--checkpoint", "cp.json"], "standard input cannot be resumed"),
        (["events.jsonl", "--chunk-size", "0"], "must be at least 1"),
        (["events.jsonl", "--api-url", "ftp://x"], "must start with http"),
        (["events.jsonl", "--batch-size", "101"], "at most the batch limit, 100"),
    ],
)
def test_usage_errors_exit_with_2_and_send_nothing(
    run: Run,
    fake: FakeLago,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    jsonl(tmp_path / "events.jsonl", [event(1)])
    jsonl(tmp_path / "events.txt", [event(1)])
    earlier = tmp_path / "events.jsonl.rejected.jsonl"
    earlier.write_text('{"line": 1}\n')  # left by an earlier run
    result = run(*args)
    assert result.status == 2
    assert message in result.err
    assert "lago-async ingest: error:" in result.err
    assert fake.events == []
    assert earlier.read_text() == '{"line": 1}\n'  # found before any file was touched


def test_no_api_key_is_a_usage_error(
    run: Run, fake: FakeLago, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAGO_API_KEY")
    result = run(str(jsonl(tmp_path / "events.jsonl", [event(1)])))
    assert result.status == 2
    assert "LAGO_API_KEY" in result.err


def test_plain_progress_lines_show_the_counts(run: Run, tmp_path: Path) -> None:
    path = jsonl(tmp_path / "events.jsonl", [event(n) for n in range(40)])
    result = run(str(path), "--progress", "plain")
    assert result.status == 0
    last = result.err.strip().splitlines()[-1]
    assert last.startswith("lago-async ingest: 100.0%")
    assert "delivered 40  duplicates 0  rejected 0  failed 0" in last
    assert "events/s" in last
    assert run(str(path), "--progress", "off").err == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_rich_bar_is_drawn_on_a_terminal_when_rich_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("rich")
    assert Progress.choose("auto", _Terminal()) == "rich"
    assert Progress.choose("auto", io.StringIO()) == "plain"
    screen = _Terminal()
    bar = Progress(
        total_bytes=1000,
        base=Totals(delivered=100),
        invalid=lambda: 2,
        position=lambda: 500,
        mode="rich",
        stream=screen,
    )
    bar(IngestStats(50, 40, 5, 3, 1, 0, 1, 0, 0))
    bar.close()
    drawn = screen.getvalue()
    assert "50%" in drawn
    assert "delivered 140 · duplicates 5 · rejected 5 · failed 1" in drawn

    monkeypatch.setitem(sys.modules, "rich", None)  # not installed
    assert Progress.choose("auto", _Terminal()) == "plain"
    with pytest.raises(UsageError, match="lago-async\\[cli\\]"):
        Progress.choose("rich", _Terminal())


def test_the_command_names_its_subcommands_and_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"lago-async {__version__}"
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err
