"""The policy node's camera path over real DDS: serialized bytes read in place, one resize (core.grid_decoding).

For frames in every layout a camera driver sends — bgr8 with an odd row step, mono8 with padding, rgb8;
png and jpeg CompressedImage — the trajectory the node publishes equals the backend's chunk for the same
frames decoded the plain way (full-size RGB, then ``resize_to_grid``), to 1e-9. A single changed pixel at
the model's grid changes the random tiny model's chunk, so this checks the node's pixels, not only its shapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from policy_sim_driver import S, SimDriver, compressed_msg, image_msg
from ros_harness import Collector, NodeProcess, RosTestNode, running_node
from trajectory_msgs.msg import JointTrajectory

from wallx_ros.core.image_decoding import decode_compressed, decode_raw
from wallx_ros.core.image_resize import resize_to_grid
from wallx_ros.core.types import Observation
from wallx_ros.nodes.ros_conversions import stamp_to_ns
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS

INSTRUCTION = "put the cube in the bowl"
NODE = "/wallx_policy"


def _padded(msg: Any, pad: int) -> Any:
    """The same pixels with ``pad`` filler bytes after every row (step = width * channels + pad)."""
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)
    msg.data = np.concatenate([rows, np.full((msg.height, pad), 0xA5, np.uint8)], axis=1).tobytes()
    msg.step += pad
    return msg


def _raw_layouts(images: dict[str, np.ndarray]) -> dict[str, Callable[[int], Any]]:
    face, left, right = (images[c] for c in DEFAULT_CAMERAS)
    return {DEFAULT_CAMERAS[0]: lambda t: _padded(image_msg(np.ascontiguousarray(face[:, :, ::-1]), t, "bgr8"), 3),
            DEFAULT_CAMERAS[1]: lambda t: _padded(image_msg(np.ascontiguousarray(left[:, :, 1]), t, "mono8"), 1),
            DEFAULT_CAMERAS[2]: lambda t: image_msg(right, t, "rgb8")}


def _compressed_layouts(images: dict[str, np.ndarray]) -> dict[str, Callable[[int], Any]]:
    fmts = dict(zip(DEFAULT_CAMERAS, ("jpeg", "png", "jpeg"), strict=True))
    return {cam: (lambda t, c=cam: compressed_msg(images[c], t, fmts[c])) for cam in DEFAULT_CAMERAS}


def _plain_rgb(msg: Any) -> np.ndarray:
    """What the node decoded before: a full-size RGB frame from the message object."""
    if hasattr(msg, "format"):
        return decode_compressed(msg.format, bytes(msg.data))
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data))


@pytest.fixture(scope="module", params=["raw", "compressed"])
def node(request: pytest.FixtureRequest, ros: RosTestNode, tiny_checkpoint: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NodeProcess, SimDriver, Collector, str]]:
    transport = request.param
    params = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "seed": 0, "num_threads": 1,
              "instruction": INSTRUCTION, "warmup": False, "use_sim_time": True, "camera_transport": transport,
              "use_cv_bridge": "false", "max_age_s": 0.5,
              # limits too wide to bind: the published chunk is compared with the model's own
              "position_lower": [-1e6], "position_upper": [1e6], "max_velocity": [1e9]}
    trajectories = ros.collect(JointTrajectory, f"{NODE}/joint_trajectory")
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS, transport=transport, shape=(241, 323))
    driver.set_time(3000 * S)
    layouts = _raw_layouts if transport == "raw" else _compressed_layouts
    driver.camera_override.update(layouts(driver.images))
    try:
        with running_node("wallx_ros.nodes.policy_node", "wallx_policy", params,
                          tmp_path_factory.mktemp(f"image_paths_{transport}")) as proc:
            assert driver.wait_for_node(), proc.output()[-3000:]
            yield proc, driver, trajectories, transport
            assert proc.alive()
    finally:
        driver.close()


def test_chunk_equals_the_backends_chunk_for_the_plainly_decoded_frames(node, tiny_checkpoint: Path) -> None:  # type: ignore[no-untyped-def]
    proc, driver, trajectories, transport = node
    stamp = driver.now_ns
    deadline = time.monotonic() + 120
    while not [m for m in trajectories.messages if len(m.points) > 1] and time.monotonic() < deadline:
        assert proc.alive(), proc.output()[-3000:]
        driver.publish_inputs(stamp)
        trajectories.wait_for(1, timeout_s=0.3)
    chunks = [m for m in trajectories.messages if len(m.points) > 1]
    assert chunks, f"no trajectory within 120 s\n{proc.output()[-3000:]}"
    assert "images via serialized bytes, zero-copy" in proc.output()
    traj = chunks[0]
    assert stamp_to_ns(traj.header.stamp) == stamp

    backend = load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0))
    grid = backend.image_shapes  # type: ignore[attr-defined]
    images = {cam: resize_to_grid(_plain_rgb(driver.camera_message(cam, stamp)), grid[cam][1], grid[cam][2])
              for cam in DEFAULT_CAMERAS}
    if transport == "raw":  # the mono camera: the model saw gray (the chunk differs from the colour frame's)
        assert np.array_equal(images[DEFAULT_CAMERAS[1]][:, :, 0], images[DEFAULT_CAMERAS[1]][:, :, 2])
    else:  # jpeg is lossy: the node decoded the payload, not the source image
        assert not np.array_equal(images[DEFAULT_CAMERAS[0]], resize_to_grid(driver.images[DEFAULT_CAMERAS[0]],
                                                                              grid[DEFAULT_CAMERAS[0]][1],
                                                                              grid[DEFAULT_CAMERAS[0]][2]))
    expected = backend.predict_chunk(Observation(images=images, state=driver.state.astype(np.float32),
                                                 instruction=INSTRUCTION, stamp_ns=stamp))
    assert list(traj.joint_names) == list(ALOHA_JOINTS)
    np.testing.assert_allclose(np.array([p.positions for p in traj.points]), expected.actions, rtol=0, atol=1e-9)
    # and one pixel's worth of difference at the grid would have shown: the chunk depends on the pixels
    nudged = dict(images)
    cam = DEFAULT_CAMERAS[2]
    nudged[cam] = images[cam].copy()
    nudged[cam][0, 0] ^= 1
    other = backend.predict_chunk(Observation(images=nudged, state=driver.state.astype(np.float32),
                                              instruction=INSTRUCTION, stamp_ns=stamp))
    assert not np.allclose(other.actions, expected.actions, rtol=0, atol=1e-9)
