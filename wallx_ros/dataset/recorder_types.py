"""What the live recorder is told (:class:`RecorderConfig`) and what it tells (:class:`RecorderStatus`, and the
:class:`EpisodeNotes` of every episode it ends: why it ended, its gaps, holds and image-to-frame skew)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from wallx_ros.core.frame_alignment import RULES, AlignmentConfig, AlignmentStats, SkewSummary
from wallx_ros.core.frame_gaps import GAP_POLICIES, GapEvent
from wallx_ros.dataset.errors import DatasetSpecError
from wallx_ros.dataset.recording_config import ACTION_STREAM, STATE_STREAM, RecordingConfig, stream_specs
from wallx_ros.dataset.spec import DatasetSpec
from wallx_ros.dataset.writer import EpisodeReport

__all__ = ["EpisodeNotes", "RecorderConfig", "RecorderStatus"]


@dataclass(frozen=True)
class RecorderConfig:
    """Dataset settings and timing. The camera sizes in ``dataset`` are placeholders: the recorder uses
    those of the existing dataset, or of the first images when it creates one. ``continuous``: an episode
    cut at ``max_episode_s`` is followed at once by the next one (autostart)."""

    dataset: DatasetSpec
    max_age_s: float = 0.1
    action_max_age_s: float = 0.5
    watermark_delay_s: float = 2.0
    max_queued_frames: int = 90
    max_episode_s: float = 0.0
    start_timeout_s: float = 10.0
    gap_policy: str = "split"
    camera_rule: str = "nearest"
    state_rule: str = "latest"
    action_rule: str = "latest"
    continuous: bool = False

    def __post_init__(self) -> None:
        for name in ("max_age_s", "action_max_age_s", "watermark_delay_s", "max_episode_s", "start_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise DatasetSpecError(f"{name} must be finite and >= 0, got {value}")
        if self.max_age_s <= 0 or self.action_max_age_s <= 0:
            raise DatasetSpecError("max_age_s and action_max_age_s must be > 0")
        if self.max_queued_frames < 1:
            raise DatasetSpecError(f"max_queued_frames must be >= 1, got {self.max_queued_frames}")
        if self.gap_policy not in GAP_POLICIES:
            raise DatasetSpecError(f"gap_policy must be one of {GAP_POLICIES}, got {self.gap_policy!r}")
        for name in ("camera_rule", "state_rule", "action_rule"):
            if getattr(self, name) not in RULES:
                raise DatasetSpecError(f"{name} must be one of {RULES}, got {getattr(self, name)!r}")
        if self.gap_policy == "hold" and not self.dataset.sample_age_streams:
            object.__setattr__(self, "dataset", replace(self.dataset, sample_age_streams=self.stream_names))

    @classmethod
    def from_recording(cls, config: RecordingConfig, dataset: DatasetSpec, **overrides: Any) -> RecorderConfig:
        """The recorder's settings from the shared recording parameters (``recording_config``)."""
        values: dict[str, Any] = {
            "max_age_s": config.max_age_s, "action_max_age_s": config.action_max_age_s,
            "watermark_delay_s": config.watermark_delay_s, "max_queued_frames": config.max_queued_frames,
            "max_episode_s": config.max_episode_s, "gap_policy": config.gap_policy,
            "camera_rule": config.camera_rule, "state_rule": config.state_rule, "action_rule": config.action_rule,
            "continuous": config.autostart}
        return cls(dataset=dataset, **{**values, **overrides})

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.dataset.cameras)

    @property
    def stream_names(self) -> tuple[str, ...]:
        return (*self.cameras, STATE_STREAM, ACTION_STREAM)

    def alignment(self) -> AlignmentConfig:
        streams = stream_specs(self.cameras, self.max_age_s, self.action_max_age_s, self.camera_rule,
                               self.state_rule, self.action_rule)
        return AlignmentConfig(fps=float(self.dataset.fps), streams=streams, hold_stale=self.gap_policy == "hold")


@dataclass(frozen=True)
class EpisodeNotes:
    """How an episode ended and what its frames went through (logged with the save, in the status)."""

    index: int
    ended_by: str  # stop | discard | max_episode_s | gap | gap_fail | shutdown | error
    events: tuple[GapEvent, ...] = ()
    held_frames: int = 0
    left_out: int = 0
    skew: dict[str, SkewSummary] = field(default_factory=dict)

    def describe(self) -> str:
        parts = []
        if self.events:
            parts.append("; ".join(e.describe() for e in self.events))
        if self.left_out:
            parts.append(f"{self.left_out} frames after the slowest stream's last sample left out "
                         "(input ended before they were complete)")
        skew = [f"{n} p50 {s.p50_ms:.1f} / max {s.max_ms:.1f} ms" for n, s in self.skew.items()
                if s.frames and n not in (STATE_STREAM, ACTION_STREAM)]
        if skew:
            parts.append("image-to-frame skew " + ", ".join(skew))
        return "; ".join(parts)


@dataclass(frozen=True)
class RecorderStatus:
    """A snapshot for logs and /diagnostics."""

    state: str  # starting | idle | opening | recording | stopping | saving | error | closed
    episodes: int
    total_frames: int
    episode_index: int | None
    episode_frames: int
    episode_s: float
    dropped: int
    dropped_detail: str
    overruns: int
    queued: int
    last_error: str
    last_saved: EpisodeReport | None
    alignment: AlignmentStats | None = None
    samples: dict[str, int] = field(default_factory=dict)
    pending_saves: int = 0
    spilled_frames: int = 0
    encoder_backlog: int = 0
    gaps: dict[str, int] = field(default_factory=dict)
    held_frames: int = 0
    skew: dict[str, SkewSummary] = field(default_factory=dict)
    last_notes: EpisodeNotes | None = None
