"""core/stream_sync.py pinned by quantity (issue 21, mutation testing): exact rates over the window, ages and
delays, the nearest tie, sequence numbers, every blocked reason's text and the tolerance boundary."""

from __future__ import annotations

import pytest

from wallx_ros.core.errors import StreamSyncError
from wallx_ros.core.stream_sync import Sample, StreamBuffer, StreamStats, StreamSync, SyncResult

MS = 1_000_000
S = 1_000_000_000


def test_rate_counts_arrivals_within_the_window_over_the_observed_span() -> None:
    buf: StreamBuffer[int] = StreamBuffer("cam", rate_window_s=2.0)
    assert buf.stats(5 * S) == StreamStats("cam", 0, 0, 0.0, None, None, "")
    buf.put(0, 10 * S - 3 * MS, 10 * S)
    assert buf.stats(10 * S).rate_hz == 0.0  # one arrival, no span yet
    buf.put(1, 11 * S - 3 * MS, 11 * S)
    assert buf.stats(11 * S).rate_hz == pytest.approx(2.0)  # 2 arrivals over 1 s observed
    for k in range(2, 6):
        buf.put(k, (10 + k) * S - 3 * MS, (10 + k) * S)
    st = buf.stats(15 * S)
    assert st.rate_hz == pytest.approx(1.0)  # arrivals at 14 and 15 in the last 2 s (13 is on the edge: out)
    assert st.received == 6 and st.errors == 0
    assert st.age_s == pytest.approx(0.003) and st.transport_delay_s == pytest.approx(0.003)
    assert st.as_dict() == {"rate_hz": "1.0", "age_s": "0.003", "transport_delay_ms": "3.00", "received": "6",
                            "errors": "0", "last_error": ""}
    buf.put_error("bad", 16 * S)
    st = buf.stats(16 * S)
    assert st.errors == 1 and st.received == 6 and st.last_error == "bad" and st.age_s is None
    assert st.as_dict()["age_s"] == "never" and st.as_dict()["transport_delay_ms"] == "n/a"
    assert st.rate_hz == pytest.approx(1.0)  # of 14, 15, 16 only 15 and 16 are in (14, 16]: two over 2 s


def test_sequence_error_and_clear() -> None:
    buf: StreamBuffer[str] = StreamBuffer("joints", depth=2)
    assert buf.sequence == 0 and buf.latest() is None and buf.nearest(0) is None and buf.error == ""
    buf.put("a", 10, 11)
    buf.put_error("NaN", 12)
    assert buf.sequence == 2 and buf.error == "NaN" and buf.latest() is None and buf.nearest(10) is None
    buf.put("b", 20, 21)
    assert buf.error == "" and buf.latest() == Sample("b", 20, 21) and buf.sequence == 3
    buf.put("c", 30, 31)
    buf.put("d", 40, 41)
    assert buf.nearest(0) == Sample("c", 30, 31)  # depth 2: "b" is gone
    assert buf.nearest(35) == Sample("d", 40, 41)  # a tie: the newer
    buf.put_error("x", 50)
    buf.clear()
    assert buf.error == "" and buf.latest() is None


def test_sync_reasons_and_tolerance_boundary() -> None:
    sync: StreamSync[str] = StreamSync(("cam", "joints", "wrist"), sync_tolerance_s=0.02, max_age_s=0.1)
    sync["cam"].put("c", 10 * S, 10 * S)
    sync["joints"].put("j", 10 * S + 20 * MS, 10 * S + 20 * MS)
    sync["wrist"].put_error("truncated", 10 * S)
    res = sync.latest_synced(10 * S + 30 * MS)
    assert res.blocked == ("wrist: truncated",) and res.stale == ("wrist",) and not res.ok
    with pytest.raises(StreamSyncError, match=r"check \.ok first"):
        _ = res.stamp_ns
    with pytest.raises(StreamSyncError):
        _ = res.oldest_stamp_ns
    sync["wrist"].put("w", 10 * S + 10 * MS, 10 * S + 10 * MS)
    ok = sync.latest_synced(10 * S + 30 * MS)  # spread exactly 20 ms: within the tolerance
    assert ok.ok and ok.stamp_ns == 10 * S + 20 * MS and ok.oldest_stamp_ns == 10 * S and ok.reason() == ""
    sync["joints"].put("j2", 10 * S + 20 * MS + 1, 10 * S + 21 * MS)
    spread = sync.latest_synced(10 * S + 30 * MS)
    assert spread.blocked == ("stamps of cam and joints differ by 20.0 ms > sync_tolerance 20.0 ms",)
    assert spread.stream_problems == () and spread.stale == ()
    assert sync.stale_streams(10 * S + 100 * MS) == ()
    assert sync.stale_streams(10 * S + 100 * MS + 1) == ("cam",)
    late = sync.latest_synced(10 * S + 100 * MS + 1)
    assert late.blocked == ("cam: stale (0.100 s old > max_age 0.100 s)",) and late.stale == ("cam",)
    assert [s.name for s in sync.stats(10 * S)] == ["cam", "joints", "wrist"]
    sync.clear()
    assert sync.latest_synced(10 * S).blocked == ("cam: no message yet", "joints: no message yet",
                                                 "wrist: no message yet")
    assert sync.stale_streams(10 * S) == ()


def test_configuration_messages() -> None:
    with pytest.raises(StreamSyncError, match=r"distinct and non-empty, got \[\]"):
        StreamSync((), 0.1, 1.0)
    with pytest.raises(StreamSyncError, match=r"got \['a', 'a'\]"):
        StreamSync(("a", "a"), 0.1, 1.0)
    with pytest.raises(StreamSyncError, match=r"sync_tolerance_s must be > 0, got 0\.0"):
        StreamSync(("a",), 0.0, 1.0)
    with pytest.raises(StreamSyncError, match="max_age_s must be > 0, got -1"):
        StreamSync(("a",), 0.1, -1)
    with pytest.raises(StreamSyncError, match="stream 'a': depth must be >= 1, got 0"):
        StreamBuffer("a", depth=0)
    sync: StreamSync[int] = StreamSync(("a",), 0.001, 0.002, depth=3)
    assert sync.sync_tolerance_ns == 1_000_000 and sync.max_age_ns == 2_000_000
    for k in range(5):
        sync["a"].put(k, k, k)
    assert sync["a"].nearest(0) == Sample(2, 2, 2)  # depth reaches the buffers
    assert SyncResult(None, ("x",), (), ()).reason() == "x"


def test_defaults_records_and_counters() -> None:
    import dataclasses

    buf: StreamBuffer[int] = StreamBuffer("cam")  # depth 1, a 2 s rate window
    buf.put(1, 0, 0)
    buf.put(2, 10, 10)
    assert buf.nearest(0) == Sample(2, 10, 10)  # only the newest is kept
    buf.put(3, 2 * S + 9, 2 * S + 10)
    assert buf.stats(2 * S + 10).rate_hz == pytest.approx(0.5)  # 2 s window: only the last arrival, over 2 s
    buf.put_error("a", 2 * S + 20)
    buf.put_error("b", 2 * S + 30)
    assert buf.stats(2 * S + 30).errors == 2
    sync: StreamSync[int] = StreamSync(("a",), 0.1, 1.0)
    sync["a"].put(1, 0, 0)
    sync["a"].put(2, 10, 10)
    assert sync["a"].nearest(0) == Sample(2, 10, 10)
    with pytest.raises(StreamSyncError, match="max_age_s must be > 0, got 0"):
        StreamSync(("a",), 0.1, 0.0)
    slow = StreamStats("cam", 1, 0, 0.0, 0.25, 0.5005, "")
    assert slow.as_dict()["transport_delay_ms"] == "500.50" and slow.as_dict()["age_s"] == "0.250"
    for record in (slow, Sample(1, 2, 3), SyncResult(None, (), (), ())):
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.name = "x"  # type: ignore[union-attr, misc]
    fast: StreamBuffer[int] = StreamBuffer("cam")
    fast.put(1, 0, 0)
    fast.put(2, 1, 1)
    assert fast.stats(1).rate_hz == pytest.approx(2e9)  # two arrivals 1 ns apart: a (silly) rate, but a rate
