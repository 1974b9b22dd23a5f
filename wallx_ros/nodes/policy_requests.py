"""One observation's round trip through the model: the request the node submits, and its timings on return.

The request carries what the node needs once the chunk comes back (robot state at the observation, input
ages, the real-time-chunking prefix it was computed with, the timeline it belongs to) as the worker's
metadata: it travels with the observation through ``policy.inference_worker`` and back in the result.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from wallx_ros.core.policy_control import PolicyControl, RtcRequest
from wallx_ros.core.stream_sync import SyncResult
from wallx_ros.core.types import Observation
from wallx_ros.nodes.observation_inputs import JOINT_STREAM
from wallx_ros.policy.inference_worker import InferenceRequest, InferenceResult

__all__ = ["STAGES", "Submitted", "observation_request", "stage_timings"]

# latency stages of one chunk, in the order of /diagnostics and msg/PolicyStatus.msg
STAGES = ("input_age", "decode", "preprocess", "inference", "postprocess", "handoff", "publish", "model",
          "end_to_end", "overhead")


@dataclass(frozen=True)
class Submitted:
    """The node's metadata of one submitted observation.

    ``generation`` is the node's timeline when it was taken: a clock jump starts a new one, and chunks of an
    older one are dropped on arrival. ``oldest_arrival_monotonic`` is the wall-clock origin of the latency
    figures on simulated time."""

    robot_state: npt.NDArray[np.float64]
    oldest_stamp_ns: int
    decode_ms: float
    input_age_ms: float
    oldest_arrival_monotonic: float
    generation: int
    rtc: RtcRequest | None = None


def observation_request(synced: SyncResult[Any], cameras: tuple[str, ...], control: PolicyControl, instruction: str,
                        now_ns: int, sim_time: bool, generation: int) -> InferenceRequest[Submitted]:
    """The model's observation from a synced input set (``synced.ok``), with the node's metadata."""
    samples: Mapping[str, Any] = synced.samples or {}
    stamp = synced.stamp_ns
    joints = samples[JOINT_STREAM].value
    frames = {cam: samples[cam].value for cam in cameras}
    obs = Observation(images={cam: f.rgb for cam, f in frames.items()},
                      state=control.mapping.state_to_model(joints.positions), instruction=instruction, stamp_ns=stamp)
    arrived = min([joints.arrived_monotonic, *(f.arrived_monotonic for f in frames.values())])
    # on simulated time the stamps say nothing about computing time: count from the oldest input's arrival
    input_age_ms = (time.monotonic() - arrived) * 1e3 if sim_time else (now_ns - synced.oldest_stamp_ns) / 1e6
    rtc = control.rtc_request(stamp, joints.positions)  # the running plan, for the model to continue
    meta = Submitted(joints.positions, synced.oldest_stamp_ns, max(f.decode_ms for f in frames.values()),
                     input_age_ms, arrived, generation, rtc)
    return InferenceRequest(obs, meta, rtc.prefix if rtc is not None else None)


def stage_timings(result: InferenceResult[Submitted], handoff_ms: float, postprocess_ms: float, publish_ms: float,
                  end_to_end_ms: float) -> dict[str, float]:
    """Every latency stage of a published chunk (ms): what the request carried plus what the node measured."""
    meta = result.metadata
    chunk_ms = result.chunk.timings_ms if result.chunk is not None else {}
    return {"input_age": meta.input_age_ms, "decode": meta.decode_ms, "handoff": handoff_ms,
            "preprocess": chunk_ms.get("preprocess", float("nan")),
            "inference": chunk_ms.get("inference", float("nan")), "postprocess": postprocess_ms,
            "publish": publish_ms, "model": result.duration_ms, "end_to_end": end_to_end_ms,
            "overhead": end_to_end_ms - result.duration_ms}
