"""rosbag2 recordings -> LeRobot dataset episodes, in one streaming pass per bag.

Per bag: check the configured topics and types, read the instruction topic (small), then stream the
camera, joint-state, action and marker messages in log-time order. The episode segmenter says where
episodes start and end; within an episode the core's :class:`~wallx_ros.core.frame_alignment.FrameAligner`
(the recorder's own alignment) turns the streams into fixed-fps frames by header stamp. Images are
decoded only when a frame takes them, so memory stays at a few messages per stream.

Idempotent: every saved episode is recorded in the dataset's ledger with its bag's content identity and
its place in the bag; a re-run skips what is there. The writer is always finalized; when anything failed
the dataset is marked incomplete (``meta/WALLX_ROS_INCOMPLETE``) and the error propagates.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import CoreError, NonMonotonicStampError
from wallx_ros.core.frame_alignment import AlignedFrame, AlignmentConfig, FrameAligner, StreamSpec
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.dataset.bag_config import BagConversionConfig
from wallx_ros.dataset.bag_messages import (
    ACTION_TYPES,
    IMAGE_TYPES,
    INSTRUCTION_TYPES,
    MARKER_TYPES,
    STATE_TYPES,
    header_stamp_ns,
    image_rgb,
    joint_vector,
    text_of,
)
from wallx_ros.dataset.bag_reader import BagMessage, RosBag
from wallx_ros.dataset.conversion_ledger import ConversionLedger, LedgerEntry
from wallx_ros.dataset.episode_segmentation import EpisodeSegmenter, SegmentEvent
from wallx_ros.dataset.errors import BagReadError, ConversionError, ImageSizeChangedError
from wallx_ros.dataset.spec import DatasetSpec

__all__ = [
    "ACTION_KEY",
    "STATE_KEY",
    "BagReport",
    "ConversionReport",
    "DatasetSink",
    "ProgressFactory",
    "convert_bags",
    "image_key",
    "probe_image_shapes",
]

log = logging.getLogger(__name__)

STATE_KEY = "observation.state"
ACTION_KEY = "action"
_PROGRESS_EVERY = 64
_MAX_ENCODER_BACKLOG = 8  # frames queued per camera in LeRobot's streaming encoder (it drops at 30)


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


class SavedEpisode(Protocol):
    @property
    def index(self) -> int: ...


class DatasetSink(Protocol):
    """The dataset writer as the converter uses it: :class:`~wallx_ros.dataset.writer.DatasetWriter`,
    the recorder's crash-safe writer, fulfils it."""

    @property
    def num_episodes(self) -> int: ...

    def start_episode(self) -> int: ...

    def add_frame(self, images: Mapping[str, npt.NDArray[np.uint8]], state: npt.ArrayLike, action: npt.ArrayLike,
                  task: str) -> None: ...

    def save_episode(self) -> SavedEpisode: ...

    def discard_episode(self) -> int: ...

    def encoder_backlog(self) -> int: ...

    def close(self) -> None: ...


class Progress(Protocol):
    def update(self, n: int) -> Any: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[int, str], Progress]
SinkFactory = Callable[[DatasetSpec], DatasetSink]


@dataclass
class BagReport:
    """What one bag contributed."""

    path: str
    bag_id: str
    episodes_written: list[int] = field(default_factory=list)
    episodes_skipped: int = 0
    frames: int = 0
    frames_dropped: int = 0
    dropped_detail: dict[str, int] = field(default_factory=dict)
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

    @property
    def frames(self) -> int:
        return sum(b.frames for b in self.bags)

    def summary(self) -> str:
        written = sum(len(b.episodes_written) for b in self.bags)
        skipped = sum(b.episodes_skipped for b in self.bags)
        dropped = sum(b.frames_dropped for b in self.bags)
        state = "complete" if self.complete else "INCOMPLETE"
        return (f"{self.root}: {written} episodes / {self.frames} frames written from {len(self.bags)} bags "
                f"({skipped} already present, {dropped} frames dropped by alignment); dataset has "
                f"{self.total_episodes} episodes, {state}")


def probe_image_shapes(bag: RosBag, config: BagConversionConfig) -> dict[str, tuple[int, int, int]]:
    """Each camera's (H, W, 3) from its first message."""
    shapes: dict[str, tuple[int, int, int]] = {}
    for cam in config.cameras:
        topic = config.camera_topic(cam)
        info = bag.require(topic, IMAGE_TYPES, f"camera {cam}")
        first = next(iter(bag.messages([topic])), None)
        if first is None:
            raise BagReadError(f"bag {bag.path}: topic {topic} lists {info.count} messages but none can be read")
        try:
            rgb = image_rgb(first.msgtype, bag.deserialize(first))
        except CoreError as err:
            raise ConversionError(f"bag {bag.path}: camera {cam} ({topic}): {err}") from err
        shapes[cam] = (int(rgb.shape[0]), int(rgb.shape[1]), 3)
    return shapes


def open_writer(spec: DatasetSpec) -> DatasetSink:
    """The recorder's crash-safe dataset writer (creates the dataset, or reopens it to append)."""
    from wallx_ros.dataset.writer import DatasetWriter

    return DatasetWriter(spec, log=log.info)


def convert_bags(bags: Sequence[str | Path], config: BagConversionConfig, root: str | Path,
                 open_sink: SinkFactory = open_writer, progress: ProgressFactory | None = None) -> ConversionReport:
    """Convert ``bags`` (each a rosbag2 folder or .mcap/.db3 file) into the dataset at ``root``.

    ``open_sink(spec)`` creates the dataset or opens the existing one for appending. Raises a
    :class:`~wallx_ros.dataset.errors.BagError` (or CoreError) on the first problem; the dataset is then
    finalized with the episodes saved so far and marked incomplete.
    """
    root = Path(root)
    ledger = ConversionLedger(root) if (root / "meta").is_dir() else None
    todo: list[tuple[Path, str]] = []
    reports: list[BagReport] = []
    for path in bags:
        with RosBag(path) as bag:
            bag_id = bag.identity()
        if ledger is not None and ledger.bag_finished(bag_id):
            report = BagReport(str(path), bag_id, already_converted=True)
            report.episodes_skipped = len(ledger.episodes_of(bag_id))
            reports.append(report)
            log.info("%s: already converted (%d episodes), skipped", path, report.episodes_skipped)
            continue
        if any(bag_id == other for _, other in todo):
            raise ConversionError(f"{path} has the same content as another bag given; give each recording once")
        todo.append((Path(path), bag_id))
    if not todo:  # every bag given is in the dataset already
        if ledger is not None and not ledger.complete:
            ledger.end_run(True)
        total = len(ledger.entries) if ledger else 0
        return ConversionReport(str(root), reports, True, total)

    with RosBag(todo[0][0]) as bag:
        shapes = probe_image_shapes(bag, config)
    sink = open_sink(config.dataset_spec(root, shapes))
    ledger = ConversionLedger(root)
    ledger.reconcile(sink.num_episodes)
    ledger.begin_run()
    complete = False
    reason = ""
    try:
        for path, bag_id in todo:
            report = BagReport(str(path), bag_id)
            reports.append(report)
            _BagConverter(path, bag_id, config, shapes, sink, ledger, report, progress).run()
        complete = True
    except BaseException as err:
        reason = f"{type(err).__name__}: {err}"
        raise
    finally:
        try:
            sink.close()
        except BaseException as err:
            complete = False
            reason = reason or f"finalize failed: {err}"
            raise
        finally:
            ledger.end_run(complete, reason)
    return ConversionReport(str(root), reports, complete, sink.num_episodes)


class _BagConverter:
    """One bag, one pass."""

    def __init__(self, path: Path, bag_id: str, config: BagConversionConfig, shapes: Mapping[str, tuple[int, ...]],
                 sink: DatasetSink, ledger: ConversionLedger, report: BagReport,
                 progress: ProgressFactory | None) -> None:
        self.path, self.bag_id, self.config, self.shapes = path, bag_id, config, dict(shapes)
        self.sink, self.ledger, self.report, self.progress = sink, ledger, report, progress
        self.state_selector = JointSelector(config.joint_names)
        self.action_selector = JointSelector(config.action_joint_names)
        self.topic_stream: dict[str, str] = {config.camera_topic(c): c for c in config.cameras}
        self.topic_stream[config.state_topic] = STATE_KEY
        if config.action_topic_name in self.topic_stream:
            raise ConversionError(f"action_topic {config.action_topic_name} is also used for state or a camera")
        self.topic_stream[config.action_topic_name] = ACTION_KEY
        streams = [StreamSpec(c, config.max_age_s) for c in config.cameras]
        streams += [StreamSpec(STATE_KEY, config.max_age_s), StreamSpec(ACTION_KEY, config.action_max_age_s)]
        self.align_config = AlignmentConfig(fps=float(config.fps), streams=tuple(streams))  # the recorder's rule
        self.latency_ns = round(config.watermark_delay_s * 1e9)
        self.aligner: FrameAligner[Any] | None = None
        self.segment = -1
        self.episode_start_ns = 0
        self.episode_frames = 0
        self.task = ""
        self.skipping = False
        self.image_cache: dict[str, tuple[int, npt.NDArray[np.uint8]]] = {}
        self.instructions: list[tuple[int, str]] = []

    def run(self) -> None:
        cfg = self.config
        with RosBag(self.path) as bag:
            self.bag = bag
            for cam in cfg.cameras:
                bag.require(cfg.camera_topic(cam), IMAGE_TYPES, f"camera {cam}")
            bag.require(cfg.state_topic, STATE_TYPES, "joint states")
            bag.require(cfg.action_topic_name, ACTION_TYPES, "action")
            if bag.topics[cfg.action_topic_name].msgtype != cfg.action_msgtype:
                raise ConversionError(
                    f"bag {self.path}: action topic {cfg.action_topic_name} carries "
                    f"{bag.topics[cfg.action_topic_name].msgtype} but action_type is {cfg.action_type!r}; "
                    "set action_type to match the recording")
            topics = list(self.topic_stream)
            if cfg.instruction_topic:
                bag.require(cfg.instruction_topic_name, INSTRUCTION_TYPES, "instruction")
                self.instructions = [(m.log_ns, text_of(m.msgtype, bag.deserialize(m)))
                                     for m in bag.messages([cfg.instruction_topic_name])]
            marker = cfg.marker_topic_name if cfg.episode_split.mode == "marker" else ""
            if marker:
                bag.require(marker, MARKER_TYPES, "episode marker")
                topics.append(marker)
            total = sum(bag.topics[t].count for t in topics)
            bar = self.progress(total, self.path.name) if self.progress else None
            segmenter = EpisodeSegmenter(cfg.episode_split)
            pending = 0
            try:
                for msg in bag.messages(topics):
                    if msg.topic == marker:
                        self._handle(segmenter.on_marker(text_of(msg.msgtype, bag.deserialize(msg)), msg.log_ns))
                    else:
                        self._handle(segmenter.on_data(msg.log_ns))
                        if self.aligner is not None:
                            self._push(msg)
                    pending += 1
                    if bar is not None and pending >= _PROGRESS_EVERY:
                        bar.update(pending)
                        pending = 0
                self._handle(segmenter.finish())
            except BaseException:
                if self.aligner is not None:
                    self.sink.discard_episode()
                    self.aligner = None
                raise
            finally:
                if bar is not None:
                    bar.update(pending)
                    bar.close()
            self.report.unknown_markers = segmenter.unknown_markers
            if segmenter.unknown_markers:
                log.warning("%s: ignored %d marker messages with unknown text, e.g. %r", self.path,
                            len(segmenter.unknown_markers), segmenter.unknown_markers[0])
        self.ledger.finish_bag(self.bag_id, str(self.path))

    # -- episodes ----------------------------------------------------------------------------------------
    def _handle(self, events: Iterable[SegmentEvent]) -> None:
        for event in events:
            if event.kind == "start":
                self._start(event.t_ns)
            elif event.kind == "end":
                self._end(event.t_ns, save=True)
            else:
                self._end(event.t_ns, save=False)

    def _start(self, t_ns: int) -> None:
        self.segment += 1
        self.episode_start_ns = t_ns
        self.episode_frames = 0
        self.image_cache.clear()
        self.skipping = self.ledger.has_segment(self.bag_id, self.segment)
        if self.skipping:
            self.report.episodes_skipped += 1
            self.aligner = None
            return
        self.task = self._task_for(t_ns)
        self.sink.start_episode()
        self.aligner = FrameAligner(self.align_config)

    def _end(self, t_ns: int, save: bool) -> None:
        aligner, self.aligner = self.aligner, None
        if aligner is None:
            return
        if save:
            self._write(aligner.flush())
        stats = aligner.stats
        self.report.frames_dropped += stats.dropped
        for detail in (stats.dropped_missing, stats.dropped_stale):
            for name, count in detail.items():
                if count:
                    self.report.dropped_detail[name] = self.report.dropped_detail.get(name, 0) + count
        if not save:
            self.sink.discard_episode()
            self.report.discarded_episodes += 1
            return
        if self.episode_frames == 0:
            self.sink.discard_episode()
            self.report.empty_episodes += 1
            log.warning("%s: segment %d has no complete frame (%s); nothing saved", self.path, self.segment,
                        stats.summary())
            return
        entry = LedgerEntry(episode_index=self.sink.num_episodes, bag_id=self.bag_id, segment=self.segment,
                            bag_path=str(self.path), start_ns=self.episode_start_ns, frames=self.episode_frames,
                            task=self.task)
        self.ledger.set_pending(entry)
        index = self.sink.save_episode().index
        if index != entry.episode_index:
            entry = LedgerEntry(**{**entry.__dict__, "episode_index": index})
        self.ledger.commit(entry)
        self.report.episodes_written.append(index)
        log.info("%s: segment %d -> episode %d, %d frames (%s)", self.path, self.segment, index,
                 self.episode_frames, stats.summary())

    def _task_for(self, t_ns: int) -> str:
        """The instruction in force when the episode starts (else the first one during it, else the config's)."""
        if self.instructions:
            stamps = [t for t, _ in self.instructions]
            i = bisect.bisect_right(stamps, t_ns) - 1
            return self.instructions[max(i, 0)][1]
        if self.config.instruction:
            return self.config.instruction
        raise ConversionError(f"bag {self.path}: no instruction for the episode starting at {t_ns} ns: set "
                              "'instruction' or 'instruction_topic' (std_msgs/String) in the conversion config")

    # -- frames ------------------------------------------------------------------------------------------
    def _push(self, msg: BagMessage) -> None:
        assert self.aligner is not None
        stream = self.topic_stream[msg.topic]
        stamp = header_stamp_ns(msg.msgtype, msg.raw, msg.log_ns)
        value: Any
        try:
            if stream == STATE_KEY:
                value = joint_vector(msg.msgtype, self.bag.deserialize(msg), self.state_selector)
            elif stream == ACTION_KEY:
                value = joint_vector(msg.msgtype, self.bag.deserialize(msg), self.action_selector)
            else:
                value = msg  # decoded only if a frame takes it
        except CoreError as err:
            raise ConversionError(f"bag {self.path}: {msg.topic} at {stamp} ns: {err}") from err
        try:
            self.aligner.push(stream, stamp, value)
        except NonMonotonicStampError as err:
            if not self.config.skip_non_monotonic:
                raise ConversionError(
                    f"bag {self.path}: topic {msg.topic}: {err}. Pass --skip-non-monotonic (skip_non_monotonic: "
                    "true) to drop such messages and convert the rest") from err
            self.report.non_monotonic_ignored += 1
            return
        self._write(self.aligner.pop_ready(watermark_ns=msg.log_ns - self.latency_ns))

    def _write(self, frames: list[AlignedFrame[Any]]) -> None:
        for frame in frames:
            images = {cam: self._image(cam, frame.values[cam], frame.sample_stamps_ns[cam])
                      for cam in self.config.cameras}
            # offline there is no deadline: wait for the video encoder instead of letting it drop frames
            while self.sink.encoder_backlog() > _MAX_ENCODER_BACKLOG:
                time.sleep(0.002)
            self.sink.add_frame(images, frame.values[STATE_KEY], frame.values[ACTION_KEY], self.task)
            self.episode_frames += 1
            self.report.frames += 1

    def _image(self, cam: str, msg: BagMessage, stamp: int) -> npt.NDArray[np.uint8]:
        cached = self.image_cache.get(cam)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            rgb = image_rgb(msg.msgtype, self.bag.deserialize(msg))
        except CoreError as err:
            raise ConversionError(f"bag {self.path}: camera {cam} ({msg.topic}) at {stamp} ns: {err}") from err
        want = self.shapes[cam]
        if rgb.shape != want:
            raise ImageSizeChangedError(
                f"bag {self.path}: camera {cam} ({msg.topic}) image at {stamp} ns is {rgb.shape[1]}x{rgb.shape[0]} "
                f"but the dataset's {image_key(cam)} is {want[1]}x{want[0]}; a LeRobot feature has one size. "
                "Record the camera at one resolution, or convert recordings of each size into separate datasets")
        self.image_cache[cam] = (stamp, rgb)
        return rgb
