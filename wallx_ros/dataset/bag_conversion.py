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

# size: one streaming pass per bag (topic mapping, alignment, gaps, episodes, the writer's journal) whose
#   stages hand each other per-message state

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import CoreError, NonMonotonicStampError
from wallx_ros.core.frame_alignment import AlignedFrame, FrameAligner, summarize_skew
from wallx_ros.core.frame_gaps import GapError, GapTracker
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
from wallx_ros.dataset.conversion_report import BagReport, ConversionReport
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
_MAX_ENCODER_BACKLOG = 90  # frames spooled ahead of the slowest camera's encoder (bounds the spool's disk use)


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
                  task: str, sample_age_s: npt.ArrayLike | None = None) -> None: ...

    def save_episode(self) -> SavedEpisode: ...

    def discard_episode(self) -> int: ...

    def encoder_backlog(self) -> int: ...

    def close(self) -> None: ...


class Progress(Protocol):
    def update(self, n: int) -> Any: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[int, str], Progress]
SinkFactory = Callable[[DatasetSpec], DatasetSink]


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


def check_topics(bag: RosBag, config: BagConversionConfig) -> None:
    """Every topic the conversion reads exists in ``bag`` with messages of a type it can convert."""
    for cam in config.cameras:
        bag.require(config.camera_topic(cam), IMAGE_TYPES, f"camera {cam}")
    bag.require(config.state_topic, STATE_TYPES, "joint states")
    action = bag.require(config.action_topic_name, ACTION_TYPES, "action")
    if action.msgtype != config.action_msgtype:
        raise ConversionError(
            f"bag {bag.path}: action topic {config.action_topic_name} carries {action.msgtype} but action_type is "
            f"{config.action_type!r}; set action_type to match the recording (or give the topic with --action)")
    if config.instruction_topic:
        bag.require(config.instruction_topic_name, INSTRUCTION_TYPES, "instruction")
    if config.episode_split.mode == "marker":
        bag.require(config.marker_topic_name, MARKER_TYPES, "episode marker")


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
            finished = ledger is not None and ledger.bag_finished(bag_id)
            if not finished:
                check_topics(bag, config)  # before anything is written: a wrong mapping creates no dataset
        if finished and ledger is not None:
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
        return ConversionReport(str(root), reports, True, total, config.gap_policy)

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
    return ConversionReport(str(root), reports, complete, sink.num_episodes, config.gap_policy)


class _BagConverter:
    """One bag, one pass. A segment (``episode_split``) is one episode, or several parts when gaps split it."""

    def __init__(self, path: Path, bag_id: str, config: BagConversionConfig, shapes: Mapping[str, tuple[int, ...]],
                 sink: DatasetSink, ledger: ConversionLedger, report: BagReport,
                 progress: ProgressFactory | None) -> None:
        self.path, self.bag_id, self.config, self.shapes = path, bag_id, config, dict(shapes)
        self.sink, self.ledger, self.report, self.progress = sink, ledger, report, progress
        self.state_selector = JointSelector(config.joint_names)
        self.action_selector = JointSelector(config.action_joint_names)
        self.topic_stream: dict[str, str] = {config.camera_topic(c): c for c in config.cameras}
        if len(self.topic_stream) != len(config.cameras):
            topics = [config.camera_topic(c) for c in config.cameras]
            raise ConversionError(f"two cameras read the same topic: {topics}")
        if config.state_topic in self.topic_stream:
            raise ConversionError(f"joint state topic {config.state_topic} is also a camera topic")
        self.topic_stream[config.state_topic] = STATE_KEY
        if config.action_topic_name in self.topic_stream:
            raise ConversionError(f"action_topic {config.action_topic_name} is also used for state or a camera")
        self.topic_stream[config.action_topic_name] = ACTION_KEY
        self.align_config = config.alignment()  # the recorder's rules and gap policy
        self.age_streams = tuple(s.name for s in self.align_config.streams) if config.gap_policy == "hold" else ()
        self.latency_ns = round(config.watermark_delay_s * 1e9)
        self.aligner: FrameAligner[Any] | None = None
        self.gaps: GapTracker | None = None
        self.segment = -1
        self.part = 0
        self.part_open = False
        self.part_skipped = False
        self.part_start_ns: int | None = None
        self.segment_start_ns = 0
        self.episode_frames = 0
        self.task = ""
        self.image_cache: dict[str, tuple[int, npt.NDArray[np.uint8]]] = {}
        self.instructions: list[tuple[int, str]] = []
        self.skew_us: dict[str, list[int]] = {}

    def run(self) -> None:
        cfg = self.config
        with RosBag(self.path) as bag:
            self.bag = bag
            check_topics(bag, cfg)
            topics = list(self.topic_stream)
            if cfg.instruction_topic:
                self.instructions = [(m.log_ns, text_of(m.msgtype, bag.deserialize(m)))
                                     for m in bag.messages([cfg.instruction_topic_name])]
            marker = cfg.marker_topic_name if cfg.episode_split.mode == "marker" else ""
            if marker:
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
                if self.part_open:
                    self.sink.discard_episode()
                    self.part_open = False
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
        self.report.skew_ms = {name: summarize_skew(values).as_dict() for name, values in self.skew_us.items()}
        self.ledger.finish_bag(self.bag_id, str(self.path))

    # -- segments and their parts --------------------------------------------------------------------------
    def _handle(self, events: Iterable[SegmentEvent]) -> None:
        for event in events:
            if event.kind == "start":
                self._start(event.t_ns)
            elif event.kind == "end":
                self._end(save=True)
            else:
                self._end(save=False)

    def _start(self, t_ns: int) -> None:
        self.segment += 1
        self.part = 0
        self.segment_start_ns = t_ns
        self.image_cache.clear()
        if self.ledger.has_segment(self.bag_id, self.segment):
            self.report.episodes_skipped += len([e for e in self.ledger.episodes_of(self.bag_id)
                                                 if e.segment == self.segment])
            self.aligner = None
            return
        self.task = self._task_for(t_ns)
        self.aligner = FrameAligner(self.align_config)
        self.gaps = GapTracker(self.config.gap_policy, float(self.config.fps))
        self._open_part()

    def _open_part(self) -> None:
        self.episode_frames = 0
        self.part_start_ns = None
        self.part_skipped = self.ledger.has_part(self.bag_id, self.segment, self.part)
        if not self.part_skipped:
            self.sink.start_episode()
            self.part_open = True

    def _close_part(self, save: bool) -> None:
        """Save (or discard) the open part; a part already in the dataset (an earlier run) is counted only."""
        if self.part_skipped:
            self.report.episodes_skipped += 1
            return
        self.part_open = False
        if not save:
            self.sink.discard_episode()
            self.report.discarded_episodes += 1
            return
        if self.episode_frames == 0:
            self.sink.discard_episode()
            self.report.empty_episodes += 1
            log.warning("%s: segment %d part %d has no complete frame; nothing saved", self.path, self.segment,
                        self.part)
            return
        entry = LedgerEntry(episode_index=self.sink.num_episodes, bag_id=self.bag_id, segment=self.segment,
                            bag_path=str(self.path), start_ns=self.part_start_ns or self.segment_start_ns,
                            frames=self.episode_frames, task=self.task, part=self.part)
        self.ledger.set_pending(entry)
        index = self.sink.save_episode().index
        if index != entry.episode_index:
            entry = LedgerEntry(**{**entry.__dict__, "episode_index": index})
        self.ledger.commit(entry)
        self.report.episodes_written.append(index)
        log.info("%s: segment %d%s -> episode %d, %d frames", self.path, self.segment,
                 f" part {self.part}" if self.part else "", index, self.episode_frames)

    def _end(self, save: bool) -> None:
        aligner, self.aligner = self.aligner, None
        if aligner is None:
            return
        assert self.gaps is not None
        if save:
            self._write(aligner.flush(), aligner)
        self.gaps.finish(aligner.trailing_dropped)
        stats = aligner.stats
        for detail in (stats.dropped_missing, stats.dropped_stale):
            for name, count in detail.items():
                if count:
                    self.report.dropped_detail[name] = self.report.dropped_detail.get(name, 0) + count
        self.report.frames_trimmed += self.gaps.leading_dropped + self.gaps.trailing_dropped
        self.report.frames_dropped += sum(e.frames for e in self.gaps.events if e.kind != "hold")
        self.report.held_frames += self.gaps.held_frames
        bag_start = self.bag.start_ns
        self.report.gaps += [{**e.as_dict(), "segment": self.segment, "at_s": round((e.start_ns - bag_start) / 1e9, 3)}
                             for e in self.gaps.events]
        for name, summary in aligner.skew_samples().items():
            self.skew_us.setdefault(name, []).extend(summary)
        self._close_part(save)
        if save:
            self.ledger.finish_segment(self.bag_id, self.segment)
        log.info("%s: segment %d: %s; %s", self.path, self.segment, stats.summary(), self.gaps.summary())

    def _task_for(self, t_ns: int) -> str:
        """The instruction in force when the episode starts (else the first one during it, else the config's)."""
        if self.instructions:
            stamps = [t for t, _ in self.instructions]
            i = bisect.bisect_right(stamps, t_ns) - 1
            return self.instructions[max(i, 0)][1]
        if self.config.instruction:
            return self.config.instruction
        raise ConversionError(f"bag {self.path}: no instruction for the episode starting at {t_ns} ns: set "
                              "'instruction' or 'instruction_topic' (std_msgs/String) in the conversion config "
                              "(or pass --instruction)")

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
        self._write(self.aligner.pop_ready(watermark_ns=msg.log_ns - self.latency_ns), self.aligner)

    def _write(self, frames: list[AlignedFrame[Any]], aligner: FrameAligner[Any]) -> None:
        assert self.gaps is not None
        for frame in frames:
            try:
                split = self.gaps.check(frame)
            except GapError as err:
                raise ConversionError(f"bag {self.path}, segment {self.segment}: {err}") from err
            if split:
                self._close_part(save=True)
                self.part += 1
                self._open_part()
            if self.part_start_ns is None:
                self.part_start_ns = frame.stamp_ns
            if self.part_skipped:
                self.episode_frames += 1
                continue
            images = {cam: self._image(cam, frame.values[cam], frame.sample_stamps_ns[cam])
                      for cam in self.config.cameras}
            # the encoders have no deadline here: bound the spool (disk) rather than race ahead of them
            while self.sink.encoder_backlog() > _MAX_ENCODER_BACKLOG:
                time.sleep(0.002)
            ages = [frame.age_s(s) for s in self.age_streams] if self.age_streams else None
            self.sink.add_frame(images, frame.values[STATE_KEY], frame.values[ACTION_KEY], self.task, ages)
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
