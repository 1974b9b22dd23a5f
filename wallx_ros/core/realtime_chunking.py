"""Real-time chunking (RTC): the chunk being computed continues the plan the robot is executing meanwhile.

Black et al. 2025, "Real-Time Execution of Action Chunking Flow Policies": while the model runs for an
observation, the robot keeps executing the running plan. The first ``d`` rows of the new chunk (d = the
inference delay in chunk steps) will therefore be the running plan's, whatever the model says: they are
*frozen* (guidance weight 1). The rest of the overlap with the running plan is *soft*-guided with weights
that decay along the chunk (the schedule), and rows past the running plan's end are free. The guidance
itself acts inside the flow sampler (``wallx_ros.policy.engine.rtc_guidance``); this module holds the parts that
need no model: the settings, the row weights, the guidance gain over flow time, the prefix handed to the
backend, all in numpy.

Time convention: WallX's flow runs from noise at t=0 to data at t=1 (``ActionHead``: ``x_t = (1-t) noise +
t action``, velocity ``action - noise``), the paper's convention, so the paper's tau is WallX's t.
(LeRobot's pi0/SmolVLA run noise at 1 -> data at 0, and its RTC inverts time.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wallx_ros.core.errors import ControlConfigError

__all__ = ["RTC_SCHEDULES", "ActionPrefix", "RtcConfig", "guidance_gain", "guidance_gains", "prefix_weights"]

# weights of the soft rows (after the frozen ones, up to the end of the running plan): exp = the paper's,
# linear = LeRobot's default, ones = the whole overlap as strong as the frozen rows, zeros = frozen rows only
RTC_SCHEDULES = ("exp", "linear", "ones", "zeros")


@dataclass(frozen=True)
class RtcConfig:
    """enabled: guide flow-mode chunks by the running plan (needs a backend that supports it).
    max_guidance: cap of the guidance gain (the paper's beta; LeRobot's default 10).
    schedule: weights of the soft-guided overlap (RTC_SCHEDULES).
    delay_percentile / delay_window: the inference delay d is this percentile of the last ``delay_window``
        measured delays (observation stamp -> chunk takes over), in chunk steps.
    """

    enabled: bool = False
    max_guidance: float = 10.0
    schedule: str = "exp"
    delay_percentile: float = 99.0
    delay_window: int = 50

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_guidance) and self.max_guidance > 0):
            raise ControlConfigError(f"rtc_max_guidance must be finite and > 0, got {self.max_guidance}")
        if self.schedule not in RTC_SCHEDULES:
            raise ControlConfigError(f"rtc_schedule must be one of {RTC_SCHEDULES}, got {self.schedule!r}")
        if not 0.0 <= self.delay_percentile <= 100.0:
            raise ControlConfigError(f"rtc_delay_percentile must be within [0, 100], got {self.delay_percentile}")
        if not 1 <= self.delay_window <= 10_000:
            raise ControlConfigError(f"rtc delay window must be within [1, 10000] chunks, got {self.delay_window}")


def prefix_weights(frozen: int, overlap: int, schedule: str) -> npt.NDArray[np.float64]:
    """Guidance weight of each of the ``overlap`` rows the running plan covers: 1 for the ``frozen`` first rows,
    then the schedule decaying towards 0 at the end of the overlap (the paper's eq. 5 for ``exp``)."""
    if schedule not in RTC_SCHEDULES:
        raise ControlConfigError(f"schedule must be one of {RTC_SCHEDULES}, got {schedule!r}")
    if overlap < 0 or not 0 <= frozen <= overlap:
        raise ControlConfigError(f"need 0 <= frozen ({frozen}) <= overlap ({overlap})")
    weights = np.zeros(overlap)
    weights[:frozen] = 1.0
    rows = np.arange(frozen, overlap, dtype=np.float64)
    c = (overlap - rows) / (overlap - frozen + 1)  # in (0, 1): near 1 right after the frozen rows
    if schedule == "exp":
        weights[frozen:] = c * np.expm1(c) / (math.e - 1.0)
    elif schedule == "linear":
        weights[frozen:] = c
    elif schedule == "ones":
        weights[frozen:] = 1.0
    return weights


def guidance_gain(t: float, dt: float, max_guidance: float) -> float:
    """Gain of the guidance term at flow time ``t`` (noise 0 -> data 1) for an Euler step of ``dt``.

    The paper's ``min(beta, (1 - t) / (t r_t^2))`` with ``r_t^2 = (1-t)^2 / (t^2 + (1-t)^2)``, i.e.
    ``((1-t)^2 + t^2) / (t (1-t))``: strong near noise and near data, 2 at t = 0.5; at t = 0 it is the cap (the
    limit is infinite), as in LeRobot. With the prefix-error form (see ``rtc_guidance``) one step moves the
    prediction ``dt * gain`` of the way to the prefix, so the gain is also capped at ``1 / dt``: beyond that a
    step overshoots the prefix (10 steps: 1/dt = 10 = the default cap, so the default is unaffected).
    """
    if not (0.0 <= t < 1.0 and dt > 0 and max_guidance > 0):
        raise ValueError(f"need 0 <= t < 1, dt > 0, max_guidance > 0 (got t={t}, dt={dt}, cap={max_guidance})")
    cap = min(max_guidance, 1.0 / dt)
    if t == 0.0:
        return cap
    return min(cap, ((1.0 - t) ** 2 + t**2) / (t * (1.0 - t)))


def guidance_gains(times: Sequence[float], max_guidance: float) -> list[float]:
    """``guidance_gain`` at the start of each Euler step of the time grid ``times`` (n + 1 values -> n gains)."""
    return [guidance_gain(float(t0), float(t1) - float(t0), max_guidance)
            for t0, t1 in itertools.pairwise(times)]


@dataclass(frozen=True)
class ActionPrefix:
    """What the backend guides a chunk towards, in the backend's chunk units (``ActionChunk.actions`` columns:
    model units after its post-processor, before the node's action mapping).

    actions: (R, A) the running plan at the new chunk's first R rows (R = rows the plan still covers);
    weights: (R,) guidance weight per row (1 for the ``frozen`` first rows, then the schedule);
    frozen: d, the rows that will execute from the running plan while the model runs.
    """

    actions: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]
    frozen: int

    def __post_init__(self) -> None:
        if self.actions.ndim != 2 or self.actions.shape[0] < 1 or self.weights.shape != (self.actions.shape[0],):
            raise ValueError(f"prefix actions {self.actions.shape} / weights {self.weights.shape} do not match")
        if not (np.all(np.isfinite(self.actions)) and np.all((self.weights >= 0) & (self.weights <= 1))):
            raise ValueError("prefix actions must be finite and weights within [0, 1]")
        if not 0 <= self.frozen <= self.actions.shape[0]:
            raise ValueError(f"frozen rows {self.frozen} outside 0..{self.actions.shape[0]}")
