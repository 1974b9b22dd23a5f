"""Chunk execution without a model: time alignment, execution horizon, cross-fade, boundary jump, expiry."""

from __future__ import annotations

import numpy as np
import pytest

from wallx_ros.core.chunk_execution import ChunkExecutor, ExecutionConfig, Plan
from wallx_ros.core.errors import ControlConfigError

MS = 1_000_000
S = 1_000_000_000
DT = 0.02
NAMES = ("a", "b")


def _ramp(start: float, slope: float, rows: int = 32) -> np.ndarray:
    t = np.arange(1, rows + 1) * DT
    return np.stack([start + slope * t, -start - slope * t], axis=1)


def test_first_chunk_is_aligned_to_the_observation_and_unchanged() -> None:
    ex = ChunkExecutor(ExecutionConfig(latency_offset_s=0.01), DT)
    res = ex.merge(_ramp(0.0, 1.0), NAMES, observation_stamp_ns=10 * S, now_ns=10 * S + 50 * MS)
    assert res.plan.origin_ns == 10 * S + 10 * MS
    np.testing.assert_array_equal(res.plan.times_ns - res.plan.origin_ns, (np.arange(1, 33) * DT * S).round())
    np.testing.assert_array_equal(res.plan.positions, _ramp(0.0, 1.0))
    assert res.raw_jump is None and res.past_points == 2  # 30 and 50 ms after the origin... 20, 40 <= 50-10
    assert ex.plan is res.plan


def test_without_latency_compensation_the_chunk_starts_now() -> None:
    ex = ChunkExecutor(ExecutionConfig(latency_compensation=False), DT)
    res = ex.merge(_ramp(0.0, 1.0), NAMES, observation_stamp_ns=10 * S, now_ns=11 * S)
    assert res.plan.origin_ns == 11 * S and res.past_points == 0


def test_replan_due_after_horizon_minus_expected_latency() -> None:
    ex = ChunkExecutor(ExecutionConfig(execution_horizon=8), DT)
    assert ex.replan_due(0)
    ex.merge(_ramp(0.0, 1.0), NAMES, 10 * S, 10 * S)
    assert not ex.replan_due(10 * S + 159 * MS)
    assert ex.replan_due(10 * S + 160 * MS)
    assert ex.replan_due(10 * S + 60 * MS, expected_latency_s=0.1)


def test_crossfade_removes_the_boundary_jump() -> None:
    ex = ChunkExecutor(ExecutionConfig(blend="crossfade", blend_steps=8), DT)
    ex.merge(_ramp(0.0, 1.0), NAMES, 10 * S, 10 * S)
    now = 10 * S + 200 * MS
    res = ex.merge(_ramp(0.5, 1.0), NAMES, 10 * S + 100 * MS, now)  # new chunk offset by 0.4 at "now"
    assert res.raw_jump == pytest.approx(0.4, abs=1e-9)
    assert res.published_jump == pytest.approx(0.0, abs=1e-9)
    # after the blend window the new chunk is followed exactly
    after = res.plan.times_ns > now + 8 * DT * S
    np.testing.assert_allclose(res.plan.positions[after], _ramp(0.5, 1.0)[after])
    # and the blend is monotone (no overshoot) between the two plans
    step = np.diff(res.plan.positions[:, 0])
    assert np.all(step > 0)


def test_no_blend_keeps_the_jump() -> None:
    ex = ChunkExecutor(ExecutionConfig(blend="none"), DT)
    ex.merge(_ramp(0.0, 1.0), NAMES, 10 * S, 10 * S)
    res = ex.merge(_ramp(0.5, 1.0), NAMES, 10 * S + 100 * MS, 10 * S + 200 * MS)
    assert res.published_jump == pytest.approx(res.raw_jump) == pytest.approx(0.4)


def test_expired_chunk_is_not_committed() -> None:
    ex = ChunkExecutor(ExecutionConfig(min_lead_s=0.04), DT)
    res = ex.merge(_ramp(0.0, 1.0), NAMES, 10 * S, now_ns=10 * S + 620 * MS)  # ends at +640 ms
    assert res.expired and "expired" in res.expiry_reason and ex.plan is None


def test_plan_sampling() -> None:
    plan = Plan(NAMES, 0, np.array([10, 20], dtype=np.int64), np.array([[0.0, 0.0], [1.0, 2.0]]))
    np.testing.assert_allclose(plan.sample(15), [0.5, 1.0])
    np.testing.assert_allclose(plan.sample(0), [0.0, 0.0])
    np.testing.assert_allclose(plan.sample(99), [1.0, 2.0])
    np.testing.assert_allclose(plan.sample_velocity(15), [1e8, 2e8])
    np.testing.assert_allclose(plan.sample_velocity(25), [0, 0])


@pytest.mark.parametrize("kwargs", [{"execution_horizon": 0}, {"blend": "rtc"}, {"blend_steps": -1},
                                    {"latency_offset_s": float("nan")}, {"min_lead_s": -1.0}])
def test_invalid_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ControlConfigError):
        ExecutionConfig(**kwargs)  # type: ignore[arg-type]
