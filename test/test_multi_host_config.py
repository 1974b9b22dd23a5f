"""Robot-side pieces of a two-host deployment: the Fast DDS host profile, JPEG encoding, the compressor node."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from robot_standin import synthetic_frames
from ros_harness import REPO_ROOT, RosTestNode, running_node
from sensor_msgs.msg import CompressedImage, Image

from wallx_ros.cli.fastdds_profile import main as profile_main
from wallx_ros.cli.fastdds_profile import two_host_profile
from wallx_ros.core.errors import ImageEncodeError
from wallx_ros.core.image_decoding import decode_compressed
from wallx_ros.core.image_encoding import JPEG_FORMAT, encode_jpeg
from wallx_ros.nodes.ros_conversions import stamp_to_ns, time_from_ns

NS = "{http://www.eprosima.com}"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("shared_memory", [True, False])
@pytest.mark.parametrize("loopback", [True, False])
def test_host_profile_binds_udp_to_the_given_addresses_only(shared_memory: bool, loopback: bool) -> None:
    root = ET.fromstring(two_host_profile("10.20.30.40", shared_memory=shared_memory, loopback=loopback))
    descriptors = {d.findtext(f"{NS}transport_id"): d for d in root.iter(f"{NS}transport_descriptor")}
    udp = descriptors["wallx_udp_two_hosts"]
    assert udp.findtext(f"{NS}type") == "UDPv4"
    addresses = [a.text for a in udp.iter(f"{NS}address")]
    assert addresses == (["127.0.0.1"] if loopback else []) + ["10.20.30.40"]
    assert ("wallx_shm_16mb" in descriptors) == shared_memory
    participant = next(root.iter(f"{NS}participant"))
    assert participant.get("is_default_profile") == "true"
    assert participant.findtext(f"{NS}rtps/{NS}useBuiltinTransports") == "false"  # no default UDP on all interfaces
    used = [t.text for t in participant.iter(f"{NS}transport_id")]
    assert set(used) == set(descriptors)


def test_shipped_example_profile_is_the_generator_output(tmp_path: Path) -> None:
    shipped = (REPO_ROOT / "config" / "fastdds_two_hosts.xml").read_text()
    assert shipped == two_host_profile("192.168.1.20")
    out = tmp_path / "p.xml"
    assert profile_main(["--self-ip", "192.168.1.20", "-o", str(out)]) == 0
    assert out.read_text() == shipped


@pytest.mark.parametrize("bad", ["127.0.0.1", "0.0.0.0", "239.255.0.1", "robot.local", "10.0.0.300"])
def test_host_profile_refuses_addresses_that_are_not_a_host_on_the_link(bad: str) -> None:
    with pytest.raises(ValueError, match="self-ip"):
        two_host_profile(bad)
    assert profile_main(["--self-ip", bad]) == 2


def test_jpeg_round_trip_and_quality() -> None:
    frame = synthetic_frames(1, 240, 320, seed=3)[0]
    sizes = {}
    for q in (30, 80, 95):
        data = encode_jpeg(frame, q)
        back = decode_compressed(JPEG_FORMAT, data)
        assert back.shape == frame.shape
        assert _psnr(frame, back) > (27 if q == 30 else 30), q
        sizes[q] = len(data)
    assert sizes[30] < sizes[80] < sizes[95] < frame.nbytes / 3
    for bad_q in (0, 101):
        with pytest.raises(ImageEncodeError, match="quality"):
            encode_jpeg(frame, bad_q)
    with pytest.raises(ImageEncodeError, match="uint8"):
        encode_jpeg(frame.astype(np.float32), 80)  # type: ignore[arg-type]


def test_compressor_node_republishes_jpeg_with_the_same_header(ros: RosTestNode, tmp_path: Path) -> None:
    frame = synthetic_frames(1, 120, 160, seed=5)[0]
    sub = {q: ros.collect(CompressedImage, f"/cam_q{q}/image_raw/compressed", qos_profile_sensor_data)
           for q in (40, 90)}
    pubs = {q: ros.publisher(Image, f"/cam_q{q}/image_raw", qos_profile_sensor_data) for q in (40, 90)}
    stamp = ros.now_ns()
    for q in (40, 90):
        params = {"cameras": [f"cam_q{q}"], "jpeg_quality": q}
        with running_node("wallx_ros.nodes.image_compressor", "image_compressor", params, tmp_path) as node:
            assert ros.wait_for_subscribers(pubs[q], timeout_s=60), node.output()
            assert ros.wait_for_publishers(f"/cam_q{q}/image_raw/compressed", timeout_s=30)
            msg = Image()
            msg.header.stamp, msg.header.frame_id = time_from_ns(stamp), "cam_optical"
            msg.height, msg.width, msg.encoding, msg.step = 120, 160, "rgb8", 160 * 3
            msg.data = frame.tobytes()
            bad = Image()  # truncated frame: reported and skipped, the node keeps running
            bad.header.stamp, bad.height, bad.width, bad.encoding, bad.step = msg.header.stamp, 120, 160, "rgb8", 480
            bad.data = b"\x00" * 10
            deadline = time.monotonic() + 30
            while not sub[q].messages and time.monotonic() < deadline:
                pubs[q].publish(bad)
                pubs[q].publish(msg)
                sub[q].wait_for(1, timeout_s=0.5)
            assert sub[q].messages, node.output()
            assert node.alive()
            log = node.output()
        out = sub[q].messages[0]
        assert stamp_to_ns(out.header.stamp) == stamp and out.header.frame_id == "cam_optical"
        assert out.format == JPEG_FORMAT
        assert _psnr(frame, decode_compressed(out.format, bytes(out.data))) > 27
        assert "truncated rgb8 image" in log
    assert len(sub[40].messages[0].data) < len(sub[90].messages[0].data)
