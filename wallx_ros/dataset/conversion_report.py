"""What a bag conversion did, bag by bag: episodes written and skipped, and every repair (gaps split or held,
frames left out, messages skipped) with the image-to-frame skew: the summary line and ``--report-json``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wallx_ros.dataset.recording_config import ACTION_STREAM, STATE_STREAM

__all__ = ["BagReport", "ConversionReport"]


@dataclass
class BagReport:
    """What one bag contributed, and every repair: ``gaps`` lists each split / held run (``core.frame_gaps``),
    ``frames_dropped`` counts the grid frames inside gaps (in no episode: time is never shifted), and
    ``frames_trimmed`` those before the first / after the last complete frame of a segment (a stream not
    there yet, or stopped). ``skew_ms``: per stream, median and max distance of the chosen samples to their
    frame times."""

    path: str
    bag_id: str
    episodes_written: list[int] = field(default_factory=list)
    episodes_skipped: int = 0
    frames: int = 0
    frames_dropped: int = 0
    frames_trimmed: int = 0
    held_frames: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    dropped_detail: dict[str, int] = field(default_factory=dict)
    skew_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    non_monotonic_ignored: int = 0
    empty_episodes: int = 0
    discarded_episodes: int = 0
    unknown_markers: list[str] = field(default_factory=list)
    already_converted: bool = False


@dataclass
class ConversionReport:
    root: str
    bags: list[BagReport]
    complete: bool
    total_episodes: int
    gap_policy: str = "split"

    @property
    def frames(self) -> int:
        return sum(b.frames for b in self.bags)

    def repairs(self) -> list[str]:
        """What was not converted one to one (``--strict`` fails on any): gaps split or held, skipped messages."""
        out = []
        splits = sum(1 for b in self.bags for g in b.gaps if g["kind"] == "split")
        if splits:
            dropped = sum(b.frames_dropped for b in self.bags)
            out.append(f"{splits} gap(s) split an episode ({dropped} grid frames inside gaps are in no episode)")
        held = sum(b.held_frames for b in self.bags)
        if held:
            out.append(f"{held} frames hold a stale sample (ages in the sample_age_s column)")
        skipped = sum(b.non_monotonic_ignored for b in self.bags)
        if skipped:
            out.append(f"{skipped} messages with a non-increasing stamp skipped")
        return out

    def summary(self) -> str:
        written = sum(len(b.episodes_written) for b in self.bags)
        skipped = sum(b.episodes_skipped for b in self.bags)
        trimmed = sum(b.frames_trimmed for b in self.bags)
        state = "complete" if self.complete else "INCOMPLETE"
        repairs = "; ".join(self.repairs()) or "no gaps"
        skew: dict[str, float] = {}
        for bag in self.bags:
            for name, s in bag.skew_ms.items():
                if name not in (STATE_STREAM, ACTION_STREAM):
                    skew[name] = max(skew.get(name, 0.0), s["max_ms"])
        skew_text = (", image-to-frame skew max " + ", ".join(f"{n} {v:.1f} ms" for n, v in skew.items())) if skew \
            else ""
        return (f"{self.root}: {written} episodes / {self.frames} frames written from {len(self.bags)} bags "
                f"({skipped} already present); gap_policy {self.gap_policy}: {repairs}; {trimmed} frames at segment "
                f"starts/ends left out{skew_text}; dataset has {self.total_episodes} episodes, {state}")
