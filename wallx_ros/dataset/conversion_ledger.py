"""Which bag episodes a dataset already holds, so that converting again adds nothing twice.

Stored next to LeRobot's metadata as ``meta/wallx_ros_sources.json`` (LeRobot ignores extra files): for
every dataset episode the source bag's content identity and the episode's place in that bag, plus
whether the last conversion completed. Written atomically (temp file + rename) after each saved episode.
While a conversion runs, or after one failed, ``meta/WALLX_ROS_INCOMPLETE`` says so in plain words.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wallx_ros.dataset.errors import ConversionError

__all__ = ["INCOMPLETE_MARKER", "LEDGER_FILENAME", "ConversionLedger", "LedgerEntry"]

LEDGER_FILENAME = "wallx_ros_sources.json"
INCOMPLETE_MARKER = "WALLX_ROS_INCOMPLETE"
_FORMAT = 1


@dataclass(frozen=True)
class LedgerEntry:
    """Dataset episode ``episode_index`` is part ``part`` of segment ``segment`` (both 0-based) of the bag
    ``bag_id``: a segment is split into parts at stream gaps (``gap_policy split``)."""

    episode_index: int
    bag_id: str
    segment: int
    bag_path: str
    start_ns: int
    frames: int
    task: str
    part: int = 0


class ConversionLedger:
    """The source record of one dataset root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.path = self.root / "meta" / LEDGER_FILENAME
        self.entries: list[LedgerEntry] = []
        self.finished_bags: dict[str, str] = {}  # bag_id -> path of bags converted to the end
        self.finished_segments: set[tuple[str, int]] = set()  # (bag_id, segment) with every part saved
        self.pending: dict[str, Any] | None = None
        self.complete = True
        if self.path.exists():
            self._load()

    # -- queries -------------------------------------------------------------------------------------
    def has_segment(self, bag_id: str, segment: int) -> bool:
        """Every part of the segment is in the dataset (it can be skipped without reading it)."""
        return (bag_id, segment) in self.finished_segments

    def has_part(self, bag_id: str, segment: int, part: int) -> bool:
        return any(e.bag_id == bag_id and e.segment == segment and e.part == part for e in self.entries)

    def bag_finished(self, bag_id: str) -> bool:
        return bag_id in self.finished_bags

    def episodes_of(self, bag_id: str) -> list[LedgerEntry]:
        return [e for e in self.entries if e.bag_id == bag_id]

    # -- updates -------------------------------------------------------------------------------------
    def begin_run(self, reason: str = "a conversion is running") -> None:
        """Mark the dataset incomplete until :meth:`end_run` says otherwise."""
        self.complete = False
        self._write_marker(reason)
        self.save()

    def end_run(self, complete: bool, reason: str = "") -> None:
        self.complete = complete
        if complete:
            (self.root / "meta" / INCOMPLETE_MARKER).unlink(missing_ok=True)
        else:
            self._write_marker(reason or "the last conversion did not complete")
        self.save()

    def set_pending(self, entry: LedgerEntry) -> None:
        """About to save ``entry``: if we crash now, :meth:`reconcile` decides from the dataset."""
        self.pending = asdict(entry)
        self.save()

    def commit(self, entry: LedgerEntry) -> None:
        self.entries.append(entry)
        self.pending = None
        self.save()

    def finish_segment(self, bag_id: str, segment: int) -> None:
        self.finished_segments.add((bag_id, segment))
        self.save()

    def finish_bag(self, bag_id: str, bag_path: str) -> None:
        self.finished_bags[bag_id] = bag_path
        self.save()

    def reconcile(self, total_episodes: int) -> None:
        """After a crash: keep a pending episode that made it into the dataset, forget one that did not, and
        forget entries beyond what the dataset holds (a dataset restored from a copy, a truncated resume)."""
        if self.pending is not None:
            entry = LedgerEntry(**self.pending)
            if entry.episode_index < total_episodes and not any(
                    e.episode_index == entry.episode_index for e in self.entries):
                self.entries.append(entry)
            self.pending = None
        kept = [e for e in self.entries if e.episode_index < total_episodes]
        if len(kept) != len(self.entries):
            lost = {e.bag_id for e in self.entries} - {e.bag_id for e in kept}
            for bag_id in lost | {e.bag_id for e in self.entries if e not in kept}:
                self.finished_bags.pop(bag_id, None)
            gone = {(e.bag_id, e.segment) for e in self.entries if e not in kept}
            self.finished_segments -= gone
            self.entries = kept
        self.save()

    # -- storage -------------------------------------------------------------------------------------
    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": _FORMAT, "complete": self.complete, "episodes": [asdict(e) for e in self.entries],
               "finished_bags": self.finished_bags, "pending": self.pending,
               "finished_segments": sorted([b, s] for b, s in self.finished_segments)}
        fd, tmp = tempfile.mkstemp(prefix=".ledger_", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(doc, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load(self) -> None:
        try:
            doc = json.loads(self.path.read_text())
            if doc.get("format") != _FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {_FORMAT}")
            self.entries = [LedgerEntry(**e) for e in doc["episodes"]]
            self.finished_bags = {str(k): str(v) for k, v in doc.get("finished_bags", {}).items()}
            self.pending = doc.get("pending")
            if "finished_segments" in doc:
                self.finished_segments = {(str(b), int(s)) for b, s in doc["finished_segments"]}
            else:  # written before segments were split into parts: a saved segment was one whole episode
                self.finished_segments = {(e.bag_id, e.segment) for e in self.entries}
            self.complete = bool(doc.get("complete", False))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConversionError(f"{self.path} is unreadable ({err}); it records which bags this dataset holds. "
                                  "Restore it, or convert into a new root") from err

    def _write_marker(self, reason: str) -> None:
        marker = self.root / "meta" / INCOMPLETE_MARKER
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            "This dataset is INCOMPLETE: " + reason + ".\n"
            "Episodes listed in meta/" + LEDGER_FILENAME + " are complete and loadable; re-run the same\n"
            "wallx-ros-bag2dataset command to convert the rest (episodes already present are skipped).\n")
