"""The README's demo runs end to end against the embedded FakeLago, faults included."""

from __future__ import annotations

import pytest

from lago_async.demo import main


def test_demo_delivers_every_event_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LAGO_API_URL", raising=False)
    monkeypatch.delenv("LAGO_API_KEY", raising=False)
    assert main(["--events", "3000", "--customers", "2"]) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert "FakeLago holds 3,000 events, 3,000 distinct transaction ids (exactly once)" in out
    assert "Accepted 3,000 events" in out
    assert "settled         3,000  = delivered + duplicates + rejected + failed" in out
    assert "(delivered, not lost)" in out
    assert err.count("3,000 of 3,000 settled") == 1  # the bar's final line, from on_progress
    assert "Current usage read back" in out
