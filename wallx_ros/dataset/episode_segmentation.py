"""Where episodes begin and end in a recording: one per bag, between marker messages, or at time gaps.

A small streaming state machine: the converter feeds it the log time of every data message and the text of
every marker message, in bag order, and acts on the events it returns. No I/O, no ROS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wallx_ros.dataset.errors import BagConfigError

__all__ = ["SPLIT_MODES", "EpisodeSegmenter", "SegmentEvent", "SplitConfig"]

SPLIT_MODES = ("bag", "marker", "gap")


@dataclass(frozen=True)
class SplitConfig:
    """mode: ``bag`` (one episode per bag), ``marker`` (a marker topic says start/stop/discard) or ``gap``
    (a pause longer than ``gap_s`` between messages ends an episode).

    Marker messages are std_msgs/String (``start_words`` / ``stop_words`` / ``discard_words``, compared
    case-insensitively) or std_msgs/Bool (true = start, false = stop).
    """

    mode: str = "bag"
    marker_topic: str = ""
    gap_s: float = 1.0
    start_words: tuple[str, ...] = ("start", "begin", "true")
    stop_words: tuple[str, ...] = ("stop", "end", "save", "false")
    discard_words: tuple[str, ...] = ("discard", "abort", "cancel")

    def __post_init__(self) -> None:
        if self.mode not in SPLIT_MODES:
            raise BagConfigError(f"episode_split must be one of {SPLIT_MODES}, got {self.mode!r}")
        if self.mode == "marker" and not self.marker_topic:
            raise BagConfigError("episode_split 'marker' needs episode_marker_topic (std_msgs/String or Bool)")
        if self.mode == "gap" and not (math.isfinite(self.gap_s) and self.gap_s > 0):
            raise BagConfigError(f"episode_gap_s must be > 0 for episode_split 'gap', got {self.gap_s}")
        words = [w.lower() for w in (*self.start_words, *self.stop_words, *self.discard_words)]
        if len(set(words)) != len(words):
            raise BagConfigError(f"marker words repeat between start/stop/discard: {words}")


@dataclass(frozen=True)
class SegmentEvent:
    """``start``: an episode begins at ``t_ns``; ``end``: it ends (save it); ``discard``: drop it."""

    kind: str
    t_ns: int


class EpisodeSegmenter:
    """Feed ``on_data`` / ``on_marker`` in bag order, then ``finish``; act on the returned events."""

    def __init__(self, config: SplitConfig) -> None:
        self.config = config
        self.active = False
        self.unknown_markers: list[str] = []
        self._last_data_ns: int | None = None
        self._gap_ns = round(config.gap_s * 1e9)
        self._words = {
            **{w.lower(): "start" for w in config.start_words},
            **{w.lower(): "end" for w in config.stop_words},
            **{w.lower(): "discard" for w in config.discard_words},
        }

    def on_data(self, t_ns: int) -> list[SegmentEvent]:
        """A data message arrived at log time ``t_ns``."""
        events: list[SegmentEvent] = []
        mode = self.config.mode
        if mode in ("bag", "gap") and not self.active:
            events.append(SegmentEvent("start", t_ns))
            self.active = True
        elif mode == "gap" and self._last_data_ns is not None and t_ns - self._last_data_ns > self._gap_ns:
            events += [SegmentEvent("end", self._last_data_ns), SegmentEvent("start", t_ns)]
        self._last_data_ns = t_ns
        return events

    def on_marker(self, text: str, t_ns: int) -> list[SegmentEvent]:
        """A marker message arrived (marker mode); unknown words are collected in ``unknown_markers``."""
        if self.config.mode != "marker":
            return []
        kind = self._words.get(text.strip().lower())
        if kind is None:
            self.unknown_markers.append(text)
            return []
        if kind == "start":
            events = [SegmentEvent("end", t_ns)] if self.active else []
            self.active = True
            return [*events, SegmentEvent("start", t_ns)]
        if not self.active:
            return []
        self.active = False
        return [SegmentEvent(kind, t_ns)]

    def finish(self) -> list[SegmentEvent]:
        """End of the bag: an open episode ends at the last data message (a marker episode without its
        stop marker is saved too: the recording stopped)."""
        if not self.active:
            return []
        self.active = False
        return [SegmentEvent("end", self._last_data_ns if self._last_data_ns is not None else 0)]
