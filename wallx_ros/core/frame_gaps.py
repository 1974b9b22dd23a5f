"""What happens to an episode when a stream has a gap: one policy shared by the recorder and the bag converter.

A gap is a run of grid frames at which some stream has no sample within its ``max_age_s`` (a camera
dropout, a stalled driver). LeRobot stores ``timestamp = frame_index / fps``, so closing such a run up
would shift every later frame earlier in time. The policies never do that:

* ``split`` (default): the episode ends at the last complete frame before the gap and a new episode starts
  at the first complete frame after it; both parts are kept and each has correct timestamps.
* ``hold``: the stale stream repeats its last sample (``AlignmentConfig.hold_stale``); every held frame is
  counted, and its age is recorded per frame by the caller (e.g. a ``sample_age_s`` column).
* ``fail``: the first gap is an error (:class:`GapError`); the caller ends with it.

Frames dropped before the first complete frame of an episode (a stream not there yet) or after its last
one (a stream that stopped) are no gap: the episode starts later or ends earlier, with correct timestamps,
and they are counted as ``leading_dropped`` / ``trailing_dropped``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wallx_ros.core.errors import AlignmentConfigError, CoreError
from wallx_ros.core.frame_alignment import AlignedFrame

__all__ = ["GAP_POLICIES", "GapError", "GapEvent", "GapTracker"]

GAP_POLICIES = ("split", "hold", "fail")
_NS = 1_000_000_000


class GapError(CoreError):
    """A gap under ``gap_policy: fail``."""


@dataclass(frozen=True)
class GapEvent:
    """One gap: ``kind`` split / hold / fail, the streams that were stale, the frame time of its first
    affected grid frame (ns, the streams' clock) and how many grid frames it covered."""

    kind: str
    streams: tuple[str, ...]
    start_ns: int
    frames: int
    fps: float

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    def describe(self) -> str:
        what = {"split": "episode split", "hold": "held last sample", "fail": "failed"}[self.kind]
        return f"{'+'.join(self.streams)} gap of {self.frames} frames ({self.duration_s:.2f} s): {what}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "streams": list(self.streams), "start_ns": self.start_ns, "frames": self.frames,
                "duration_s": round(self.duration_s, 4)}


@dataclass
class GapTracker:
    """Applies the policy to the frames of one recording (episode or bag segment), in index order."""

    policy: str
    fps: float
    events: list[GapEvent] = field(default_factory=list)
    leading_dropped: int = 0
    trailing_dropped: int = 0
    held_frames: int = 0
    _seen: bool = False
    _holds: dict[str, tuple[int, int]] = field(default_factory=dict)  # stream -> (first stamp, frames) of a run

    def __post_init__(self) -> None:
        if self.policy not in GAP_POLICIES:
            raise AlignmentConfigError(f"gap_policy must be one of {GAP_POLICIES}, got {self.policy!r}")

    @property
    def hold_stale(self) -> bool:
        """Whether the aligner should hold stale samples (``AlignmentConfig.hold_stale``)."""
        return self.policy == "hold"

    def check(self, frame: AlignedFrame[Any]) -> bool:
        """Record ``frame``; True if it starts a new part (``split`` after a gap). Raises GapError (``fail``)."""
        split = False
        if not self._seen:
            self._seen = True
            self.leading_dropped += frame.dropped_before
        elif frame.dropped_before:
            start_ns = frame.stamp_ns - round(frame.dropped_before * _NS / self.fps)
            # hold only drops frames for a stream with no sample at all, which cannot happen mid-episode; split then
            kind = "fail" if self.policy == "fail" else "split"
            event = GapEvent(kind, frame.gap_streams, start_ns, frame.dropped_before, self.fps)
            self.events.append(event)
            if kind == "fail":
                raise GapError(f"{event.describe()} at {start_ns / _NS:.3f} s (gap_policy fail); use gap_policy "
                               "split (keep both parts) or hold (repeat the last sample)")
            split = True
        self._track_holds(frame)
        return split

    def _track_holds(self, frame: AlignedFrame[Any]) -> None:
        if frame.held:
            self.held_frames += 1
        for name in frame.held:
            first, count = self._holds.get(name, (frame.stamp_ns, 0))
            self._holds[name] = (first, count + 1)
        for name in [n for n in self._holds if n not in frame.held]:
            self._close_hold(name)

    def _close_hold(self, name: str) -> None:
        first, count = self._holds.pop(name)
        self.events.append(GapEvent("hold", (name,), first, count, self.fps))

    def finish(self, trailing_dropped: int = 0) -> None:
        """End of the recording: close open hold runs, count frames dropped after the last complete one."""
        for name in list(self._holds):
            self._close_hold(name)
        if self._seen:
            self.trailing_dropped += trailing_dropped
        else:
            self.leading_dropped += trailing_dropped

    def counts(self) -> dict[str, int]:
        """Events by kind, for summaries."""
        out = dict.fromkeys(GAP_POLICIES, 0)
        for event in self.events:
            out[event.kind] += 1
        return out

    def summary(self) -> str:
        """One phrase for logs: ``no gaps`` or e.g. ``1 split (face_view gap of 9 frames (0.30 s): ...)``."""
        parts = []
        if self.events:
            parts.append("; ".join(e.describe() for e in self.events[:3]) + (" ..." if len(self.events) > 3 else ""))
        if self.leading_dropped or self.trailing_dropped:
            parts.append(f"{self.leading_dropped} frames before the first complete one and {self.trailing_dropped} "
                         "after the last one left out")
        return "; ".join(parts) or "no gaps"
