"""Property-based fuzzing of every message -> core conversion, on real ROS message objects (no DDS needed).

What a subscription callback does with a message is exactly what runs here: ``sensor_msgs/Image`` and
``CompressedImage`` through the node's ``ImageConverter`` and ``resize_to_grid`` (observation_inputs.py),
``JointState`` through ``JointSelector`` and ``ActionMapping.state_to_model``, ``JointTrajectory`` through the
controller rules (``validate`` + ``hazards``) and the simulator's JTC-like executor, header stamps through
``stamp_to_ns``. Each input must end either in the documented error (``CoreError``: the stream is blocked with
that reason) or in an output that is well-formed and safe. Counts go to the reliability ledger.
"""

from __future__ import annotations

import itertools
import struct
import zlib

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from fuzz_ledger import fuzz_settings, trial
from hypothesis import given
from hypothesis import strategies as st
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.cdr_image import parse_compressed_image_cdr, parse_image_cdr
from wallx_ros.core.errors import CoreError
from wallx_ros.core.grid_decoding import compressed_to_grid, raw_to_grid
from wallx_ros.core.image_decoding import SUPPORTED_ENCODINGS
from wallx_ros.core.image_resize import resize_to_grid
from wallx_ros.core.joint_mapping import JointSelector
from wallx_ros.core.joint_trajectory_rules import hazards, time_from_start_ns, validate
from wallx_ros.nodes.ros_conversions import ImageConverter, stamp_to_ns
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS
from wallx_ros.sim.trajectory_executor import ReceivedTrajectory, TrajectoryExecutor

GRID = (192, 256)  # the tiny checkpoint's image feature (H, W): what the node resizes to
CONVERTER = ImageConverter("auto")  # what the node uses (cv_bridge when usable, else the numpy path)
_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1, "8UC1": 1, "8UC3": 3}
_ORDER = {"rgb8": [0, 1, 2], "bgr8": [2, 1, 0], "rgba8": [0, 1, 2], "bgra8": [2, 1, 0], "mono8": [0, 0, 0],
          "8UC1": [0, 0, 0], "8UC3": [2, 1, 0]}

u32 = st.integers(0, 2**32 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)


def _reference_rgb(encoding: str, height: int, width: int, step: int, data: bytes) -> np.ndarray:
    """An independent, slow decoding of a raw image: row by row, honouring ``step``."""
    ch = _CHANNELS[encoding]
    rows = [np.frombuffer(data[r * step: r * step + width * ch], np.uint8).reshape(width, ch) for r in range(height)]
    return np.stack(rows)[:, :, _ORDER[encoding]]


def _check_frame(rgb: np.ndarray, flag) -> None:  # type: ignore[no-untyped-def]
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or not rgb.flags.c_contiguous:
        flag(f"decoded frame is {rgb.dtype} {rgb.shape} (contiguous {rgb.flags.c_contiguous})")
    out = resize_to_grid(rgb, *GRID)
    if out.shape != (*GRID, 3) or out.dtype != np.uint8:
        flag(f"resized frame is {out.dtype} {out.shape}")


# -- sensor_msgs/Image ----------------------------------------------------------------------------------
@st.composite
def raw_images(draw: st.DrawFn) -> Image:
    encoding = draw(st.one_of(st.sampled_from(SUPPORTED_ENCODINGS),
                              st.sampled_from(["yuv422", "16UC1", "32FC1", "bayer_rggb8", "rgb16", "RGB8", ""]),
                              st.text(max_size=12)))
    small = draw(st.booleans())
    height = draw(st.integers(0, 48) if small else u32)
    width = draw(st.integers(0, 48) if small else u32)
    ch = _CHANNELS.get(encoding, draw(st.integers(1, 4)))
    step = draw(st.one_of(st.just(width * ch), st.integers(width * ch, width * ch + 16), u32)) % 2**32
    need = step * max(height - 1, 0) + width * ch
    size = draw(st.one_of(st.just(need), st.integers(0, need + 64), st.integers(0, 256))) if need <= 200_000 \
        else draw(st.integers(0, 4096))
    msg = Image()
    msg.header.stamp.sec = draw(st.integers(-(2**31), 2**31 - 1))
    msg.header.stamp.nanosec = draw(u32)
    msg.height, msg.width, msg.step, msg.encoding = height, width, step, encoding
    msg.is_bigendian = draw(st.integers(0, 1))
    msg.data = draw(st.binary(min_size=size, max_size=size)) if size <= 4096 else \
        np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    return msg


@fuzz_settings(200)
@given(raw_images())
def test_fuzz_image_messages(msg: Image) -> None:
    with trial("sensor_msgs/Image -> rgb -> model grid", (CoreError,)) as flag:
        stamp_to_ns(msg.header.stamp)
        rgb = CONVERTER.to_rgb(msg)
        _check_frame(rgb, flag)
        expected = _reference_rgb(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data))
        if not np.array_equal(rgb, expected):
            flag(f"{msg.encoding} {msg.width}x{msg.height} step {msg.step}: pixels differ from the reference")


@fuzz_settings(200)
@given(raw_images(), st.integers(0, 64))
def test_fuzz_serialized_image_messages(msg: Image, cut: int) -> None:
    """The node's path: a raw subscription's bytes (sometimes cut short) -> core.cdr_image -> one resize."""
    with trial("serialized sensor_msgs/Image -> model grid", (CoreError,)) as flag:
        buf = serialize_message(msg)
        raw = parse_image_cdr(buf[:len(buf) - cut] if cut < len(buf) else buf)
        out = raw_to_grid(raw.encoding, raw.height, raw.width, raw.step, raw.data, GRID)
        if out.shape != (*GRID, 3) or out.dtype != np.uint8 or not out.flags.c_contiguous:
            flag(f"resized frame is {out.dtype} {out.shape}")
        expected = resize_to_grid(_reference_rgb(raw.encoding, raw.height, raw.width, raw.step, bytes(raw.data)),
                                  *GRID)
        if not np.array_equal(out, expected):
            flag(f"{raw.encoding} {raw.width}x{raw.height} step {raw.step}: pixels differ from the reference")


# -- sensor_msgs/CompressedImage ------------------------------------------------------------------------
def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header_only(width: int, height: int, color_type: int) -> bytes:
    """A PNG that claims a (possibly huge) size: decoders must refuse it, not allocate it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _jpeg_with_size(width: int, height: int) -> bytes:
    """A small valid JPEG whose SOF0 marker is rewritten to claim ``width`` x ``height``."""
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    assert ok
    data = bytearray(buf.tobytes())
    i = data.find(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@st.composite
def compressed_images(draw: st.DrawFn) -> CompressedImage:
    kind = draw(st.sampled_from(["jpeg", "png"]))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if draw(st.booleans()):
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    ok, buf = cv2.imencode(".jpg" if kind == "jpeg" else ".png", img)
    assert ok
    valid = buf.tobytes()
    mutation = draw(st.sampled_from(["none", "truncate", "flip", "random", "empty", "huge_header", "garbage_tail"]))
    data = valid
    if mutation == "truncate":
        data = valid[: draw(st.integers(0, len(valid) - 1))]
    elif mutation == "flip":
        raw = bytearray(valid)
        for _ in range(draw(st.integers(1, 8))):
            raw[draw(st.integers(0, len(raw) - 1))] ^= 1 << draw(st.integers(0, 7))
        data = bytes(raw)
    elif mutation == "random":
        data = draw(st.binary(max_size=2048))
    elif mutation == "empty":
        data = b""
    elif mutation == "huge_header":
        side = st.integers(1, 2**31 - 1) if kind == "png" else st.integers(1, 65535)
        width, height = draw(side), draw(side)
        data = _png_header_only(width, height, draw(st.sampled_from([0, 2, 6]))) if kind == "png" \
            else _jpeg_with_size(width, height)
    elif mutation == "garbage_tail":
        data = valid + draw(st.binary(min_size=1, max_size=256))
    fmt = draw(st.one_of(st.just(kind), st.sampled_from(["rgb8; jpeg compressed bgr8", "png", "jpeg", "tiff", "",
                                                          "PNG", "bgr8; png compressed bgr8"]),
                         st.text(max_size=20)))
    msg = CompressedImage()
    msg.format, msg.data = fmt, data
    return msg


@fuzz_settings(150)
@given(compressed_images())
def test_fuzz_compressed_image_messages(msg: CompressedImage) -> None:
    with trial("sensor_msgs/CompressedImage -> rgb -> model grid", (CoreError,)) as flag:
        rgb = CONVERTER.to_rgb(msg)
        _check_frame(rgb, flag)
        if rgb.shape[0] * rgb.shape[1] > 16384 * 16384:
            flag(f"decoded a {rgb.shape} frame: a small message made the node allocate {rgb.nbytes >> 20} MiB")


@fuzz_settings(150)
@given(compressed_images(), st.integers(0, 64))
def test_fuzz_serialized_compressed_image_messages(msg: CompressedImage, cut: int) -> None:
    with trial("serialized sensor_msgs/CompressedImage -> model grid", (CoreError,)) as flag:
        buf = serialize_message(msg)
        raw = parse_compressed_image_cdr(buf[:len(buf) - cut] if cut < len(buf) else buf)
        out = compressed_to_grid(raw.format, raw.data, GRID)
        if out.shape != (*GRID, 3) or out.dtype != np.uint8:
            flag(f"resized frame is {out.dtype} {out.shape}")


# -- sensor_msgs/JointState -----------------------------------------------------------------------------
WANTED = ALOHA_JOINTS
MAPPING = ActionMapping.build(WANTED, WANTED, gripper_joints=("left_gripper", "right_gripper"), gripper_scale=0.05,
                              gripper_offset=0.01)


@st.composite
def joint_states(draw: st.DrawFn) -> JointState:
    pool = [*WANTED, "base_yaw", "", "left_waist ", "LEFT_WAIST"]
    names = draw(st.one_of(st.permutations(list(WANTED)).map(list),
                           st.lists(st.sampled_from(pool), max_size=20),
                           st.lists(st.text(max_size=8), max_size=6)))
    if draw(st.booleans()):
        names = [*names, *draw(st.lists(st.sampled_from(pool), max_size=3))]
    n = len(names) + draw(st.sampled_from([0, 0, 0, -1, 1, 5]))
    positions = draw(st.lists(st.one_of(finite, any_float), min_size=max(n, 0), max_size=max(n, 0)))
    msg = JointState()
    msg.name, msg.position = names, positions
    msg.velocity = draw(st.lists(any_float, max_size=3))
    return msg


@fuzz_settings(250)
@given(joint_states())
def test_fuzz_joint_state_messages(msg: JointState) -> None:
    selector = JointSelector(WANTED)
    with trial("sensor_msgs/JointState -> model state", (CoreError,)) as flag:
        picked = selector.select(msg.name, msg.position)
        if picked.shape != (len(WANTED),) or not np.all(np.isfinite(picked)):
            flag(f"selected {picked}")
        lookup = dict(zip(msg.name, msg.position, strict=True))
        if not np.array_equal(picked, np.array([lookup[n] for n in WANTED])):
            flag("joints were not picked by name")
        state = MAPPING.state_to_model(picked)
        if state.dtype != np.float32 or state.shape != (len(WANTED),):
            flag(f"model state {state.dtype} {state.shape}")
        if np.all(np.abs(picked) < 1e30) and not np.all(np.isfinite(state)):
            flag("finite joint positions became a non-finite model state")


# -- trajectory_msgs/JointTrajectory --------------------------------------------------------------------
CONTROLLER = ALOHA_JOINTS


@st.composite
def trajectories(draw: st.DrawFn) -> JointTrajectory:
    names = draw(st.one_of(st.just(list(CONTROLLER)), st.permutations(list(CONTROLLER)).map(list),
                           st.lists(st.sampled_from([*CONTROLLER, "other"]), max_size=16)))
    n = len(names)
    count = draw(st.integers(0, 6))
    msg = JointTrajectory()
    msg.header.stamp.sec = draw(st.one_of(st.just(0), st.integers(-5, 200), st.integers(-(2**31), 2**31 - 1)))
    msg.header.stamp.nanosec = draw(st.one_of(st.just(0), st.integers(0, 999_999_999)))
    msg.joint_names = names
    t = draw(st.integers(0, 10**8))
    points = []
    for _ in range(count):
        p = JointTrajectoryPoint()
        size = n + draw(st.sampled_from([0, 0, 0, 0, -1, 1]))
        value = st.one_of(st.floats(-4, 4), any_float) if draw(st.integers(0, 9)) == 0 else st.floats(-4, 4)
        p.positions = draw(st.lists(value, min_size=max(size, 0), max_size=max(size, 0)))
        p.velocities = draw(st.one_of(st.just([]), st.lists(value, min_size=n, max_size=n),
                                      st.lists(st.just(0.0), min_size=n, max_size=n)))
        if draw(st.integers(0, 5)) == 0:
            p.accelerations = draw(st.lists(value, min_size=n, max_size=n))
        if draw(st.integers(0, 9)) == 0:
            p.effort = [1.0]
        t += draw(st.one_of(st.integers(1, 10**8), st.integers(-(10**8), 10**8)))
        sec, nanosec = divmod(t, 1_000_000_000)
        p.time_from_start = Duration(sec=max(min(sec, 2**31 - 1), -(2**31)), nanosec=nanosec)
        points.append(p)
    if points and draw(st.booleans()):
        points[-1].velocities = [0.0] * n
    msg.points = points
    return msg


@fuzz_settings(150)
@given(trajectories(), st.integers(0, 300 * 10**9), st.integers(1, 50))
def test_fuzz_joint_trajectory_messages(msg: JointTrajectory, now_ns: int, cycles: int) -> None:
    """What a joint_trajectory_controller (and our simulator) does with any JointTrajectory message."""
    executor = TrajectoryExecutor(CONTROLLER)
    measured = np.zeros(len(CONTROLLER))
    with trial("trajectory_msgs/JointTrajectory -> JTC rules -> sim executor", (CoreError,)) as flag:
        stamp = stamp_to_ns(msg.header.stamp)
        problems = validate(msg.joint_names, msg.points, CONTROLLER, now_ns, stamp)
        unsafe = hazards(msg.joint_names, msg.points)
        rejected = executor.offer(ReceivedTrajectory(tuple(msg.joint_names), tuple(msg.points), stamp), now_ns)
        if bool(rejected) != bool(problems or unsafe):
            flag(f"executor decision {rejected} differs from the rules {problems + unsafe}")
        values = [v for p in msg.points for v in (*p.positions, *p.velocities, *p.accelerations)]
        if not rejected and not np.all(np.isfinite(values)):
            flag("a trajectory with NaN/Inf was accepted")
        times = [time_from_start_ns(p) for p in msg.points]
        if not rejected and not all(b > a for a, b in itertools.pairwise(times)):
            flag("a trajectory whose time_from_start does not increase was accepted")
        for k in range(cycles):
            sp = executor.update(now_ns + k * 20_000_000, measured, np.zeros_like(measured))
            if not (np.all(np.isfinite(sp.positions)) and np.all(np.isfinite(sp.velocities))):
                flag(f"non-finite setpoint {sp}")
            measured = sp.positions
        if rejected:
            raise CoreError("rejected: " + "; ".join(rejected))  # counted as a refusal


def test_fuzz_targets_catch_what_they_claim_to() -> None:
    """The properties above can fail: a decoder bug and an unsafe trajectory are caught."""
    from fuzz_ledger import UnsafeOutput

    msg = Image(height=2, width=2, encoding="bgr8", step=6, data=bytes(range(12)))
    rgb = CONVERTER.to_rgb(msg)
    assert np.array_equal(rgb, _reference_rgb("bgr8", 2, 2, 6, bytes(range(12))))
    with pytest.raises(UnsafeOutput), trial("self-check", (CoreError,)) as flag:
        if not np.array_equal(rgb[:, :, ::-1], _reference_rgb("bgr8", 2, 2, 6, bytes(range(12)))):
            flag("channel order")
    point = JointTrajectoryPoint(positions=[float("nan")] * len(CONTROLLER), velocities=[0.0] * len(CONTROLLER))
    point.time_from_start = Duration(sec=1)
    assert hazards(list(CONTROLLER), [point])
