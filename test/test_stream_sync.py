"""Observation sync by header stamp: latest of each stream, tolerance, max age, bad messages, statistics."""

from __future__ import annotations

import pytest

from wallx_ros.core.errors import StreamSyncError
from wallx_ros.core.stream_sync import StreamBuffer, StreamSync

MS = 1_000_000
S = 1_000_000_000


def _sync(tol_s: float = 0.05, max_age_s: float = 0.5) -> StreamSync[str]:
    return StreamSync(("cam", "joints"), tol_s, max_age_s)


def test_latest_of_each_stream_within_tolerance() -> None:
    sync = _sync()
    sync["cam"].put("c1", 10 * S, 10 * S + MS)
    sync["joints"].put("j1", 10 * S - 20 * MS, 10 * S)
    sync["joints"].put("j2", 10 * S + 5 * MS, 10 * S + 6 * MS)  # newer one wins
    res = sync.latest_synced(10 * S + 10 * MS)
    assert res.ok and res.samples is not None
    assert res.samples["cam"].value == "c1" and res.samples["joints"].value == "j2"
    assert res.stamp_ns == 10 * S + 5 * MS and res.oldest_stamp_ns == 10 * S


def test_missing_stream_blocks_and_is_named() -> None:
    sync = _sync()
    sync["cam"].put("c", 0, 0)
    res = sync.latest_synced(MS)
    assert not res.ok and res.blocked == ("joints: no message yet",) and res.stream_problems == res.blocked


def test_stamps_further_apart_than_tolerance_block_without_a_stream_problem() -> None:
    sync = _sync(tol_s=0.01)
    sync["cam"].put("c", 10 * S, 10 * S)
    sync["joints"].put("j", 10 * S + 30 * MS, 10 * S + 30 * MS)
    res = sync.latest_synced(10 * S + 40 * MS)
    assert not res.ok and "differ by 30.0 ms > sync_tolerance 10.0 ms" in res.reason()
    assert res.stream_problems == ()


def test_stale_stream_blocks_and_is_reported() -> None:
    sync = _sync(max_age_s=0.5)
    sync["cam"].put("c", 10 * S, 10 * S)
    sync["joints"].put("j", 10 * S, 10 * S)
    assert sync.latest_synced(10 * S + 500 * MS).ok  # exactly max_age is still fresh
    res = sync.latest_synced(10 * S + 501 * MS)
    assert not res.ok and set(res.stale) == {"cam", "joints"}
    assert "cam: stale (0.501 s old > max_age 0.500 s)" in res.blocked
    assert sync.stale_streams(10 * S + 501 * MS) == ("cam", "joints")


def test_bad_message_blocks_until_a_good_one_and_never_reuses_the_old_sample() -> None:
    sync = _sync()
    sync["cam"].put("good", 10 * S, 10 * S)
    sync["joints"].put("j", 10 * S, 10 * S)
    sync["cam"].put_error("unsupported image encoding 'yuv422'", 10 * S + MS)
    res = sync.latest_synced(10 * S + 2 * MS)
    assert not res.ok and res.blocked == ("cam: unsupported image encoding 'yuv422'",)
    assert sync["cam"].latest() is None
    sync["cam"].put("again", 10 * S + 3 * MS, 10 * S + 3 * MS)
    assert sync.latest_synced(10 * S + 4 * MS).ok


def test_nearest_uses_history() -> None:
    buf: StreamBuffer[int] = StreamBuffer("cam", depth=3)
    for i in range(5):
        buf.put(i, i * 100 * MS, i * 100 * MS)
    assert buf.nearest(260 * MS).value == 3  # type: ignore[union-attr]
    assert buf.nearest(0).value == 2  # type: ignore[union-attr]  # only the last 3 are kept


def test_stats_rate_age_and_transport_delay() -> None:
    buf: StreamBuffer[int] = StreamBuffer("cam")
    for i in range(31):  # 30 Hz for one second, each arriving 4 ms after its stamp
        t = S + i * S // 30
        buf.put(i, t, t + 4 * MS)
    st = buf.stats(2 * S + 4 * MS)
    assert st.rate_hz == pytest.approx(30, rel=0.1)
    assert st.age_s == pytest.approx(0.004, abs=1e-6)
    assert st.transport_delay_s == pytest.approx(0.004)
    assert buf.stats(10 * S).rate_hz == 0.0  # silence: the rate drops to zero
    assert buf.stats(2 * S).as_dict()["received"] == "31"


def test_invalid_configuration() -> None:
    with pytest.raises(StreamSyncError):
        StreamSync(("a", "a"), 0.1, 1.0)
    with pytest.raises(StreamSyncError):
        StreamSync(("a",), 0.0, 1.0)
    with pytest.raises(StreamSyncError):
        StreamBuffer("a", depth=0)
