"""core/chunk_execution.py pinned by quantity (issue 21, mutation testing): plans of 3+ points sampled between grid
points, the cross-fade's weights row by row with a bounded step, hard switches, expiry and replan boundaries."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from wallx_ros.core.chunk_execution import ChunkExecutor, ExecutionConfig, Plan
from wallx_ros.core.errors import ControlConfigError

MS = 1_000_000
S = 1_000_000_000
DT = 0.02
NAMES = ("a", "b")


def _plan() -> Plan:
    """Four points, uneven spacing, two joints moving differently."""
    times = np.array([100, 120, 160, 170], dtype=np.int64) * MS
    pos = np.array([[0.0, 1.0], [1.0, 1.0], [3.0, 0.0], [2.0, 4.0]])
    return Plan(NAMES, 90 * MS, times, pos)


def test_sampling_a_multi_point_plan_between_and_at_grid_points() -> None:
    plan = _plan()
    query = np.array([0, 100, 110, 120, 130, 150, 160, 165, 170, 500], dtype=np.int64) * MS
    expected = np.array([[0.0, 1.0], [0.0, 1.0], [0.5, 1.0], [1.0, 1.0], [1.5, 0.75], [2.5, 0.25], [3.0, 0.0],
                         [2.5, 2.0], [2.0, 4.0], [2.0, 4.0]])
    np.testing.assert_allclose(plan.sample_many(query), expected, atol=1e-12)
    np.testing.assert_allclose(plan.sample(165 * MS), [2.5, 2.0])
    single = Plan(NAMES, 0, np.array([10], dtype=np.int64), np.array([[7.0, 8.0]]))
    np.testing.assert_array_equal(single.sample_many(np.array([0, 10, 99], dtype=np.int64)), [[7.0, 8.0]] * 3)


def test_velocity_of_each_segment_and_outside_the_plan() -> None:
    plan = _plan()
    np.testing.assert_allclose(plan.sample_velocity(110 * MS), [50.0, 0.0])
    np.testing.assert_allclose(plan.sample_velocity(120 * MS), [50.0, -25.0])  # a point starts the next segment
    np.testing.assert_allclose(plan.sample_velocity(169 * MS), [-100.0, 400.0])
    np.testing.assert_array_equal(plan.sample_velocity(99 * MS), [0.0, 0.0])
    np.testing.assert_array_equal(plan.sample_velocity(170 * MS), [0.0, 0.0])  # the end: at rest
    single = Plan(NAMES, 0, np.array([10], dtype=np.int64), np.array([[7.0, 8.0]]))
    np.testing.assert_array_equal(single.sample_velocity(10), [0.0, 0.0])
    assert plan.end_ns == 170 * MS
    np.testing.assert_array_equal(plan.times_from_origin_ns(), np.array([10, 30, 70, 80]) * MS)


def test_velocity_before_a_time_is_the_segment_arriving_there() -> None:
    """What a replacement from ``t`` accelerates from: at a point, the segment that ends there (the one after it
    never runs); up to the first point the entry velocity; after the last point rest."""
    plan = _plan()
    np.testing.assert_allclose(plan.velocity_before(110 * MS), [50.0, 0.0])  # inside a segment: its slope
    np.testing.assert_allclose(plan.velocity_before(120 * MS), [50.0, 0.0])  # at a point: the segment before it
    np.testing.assert_allclose(plan.velocity_before(121 * MS), [50.0, -25.0])
    np.testing.assert_allclose(plan.velocity_before(170 * MS), [-100.0, 400.0])  # arriving at the end
    np.testing.assert_array_equal(plan.velocity_before(171 * MS), [0.0, 0.0])
    np.testing.assert_array_equal(plan.velocity_before(100 * MS), [0.0, 0.0])  # no entry velocity: from rest
    entered = dataclasses.replace(plan, entry_velocity=np.array([3.0, -4.0]))
    np.testing.assert_array_equal(entered.velocity_before(100 * MS), [3.0, -4.0])
    np.testing.assert_array_equal(entered.velocity_before(95 * MS), [3.0, -4.0])
    np.testing.assert_allclose(entered.velocity_before(101 * MS), [50.0, 0.0])
    single = Plan(NAMES, 0, np.array([10], dtype=np.int64), np.array([[7.0, 8.0]]))
    np.testing.assert_array_equal(single.velocity_before(11), [0.0, 0.0])


@pytest.mark.parametrize(("times", "positions", "message"), [
    ([10, 20], np.zeros((3, 2)), r"plan positions \(3, 2\) do not match 2 times x 2 joints"),
    ([10, 20], np.zeros(2), r"plan positions \(2,\) do not match"),
    ([], np.zeros((0, 2)), "non-empty and strictly increasing"),
    ([10, 10], np.zeros((2, 2)), "non-empty and strictly increasing"),
    ([20, 10], np.zeros((2, 2)), "non-empty and strictly increasing"),
])
def test_plan_validation(times: list[int], positions: np.ndarray, message: str) -> None:
    with pytest.raises(ControlConfigError, match=message):
        Plan(NAMES, 0, np.array(times, dtype=np.int64), positions)


def _executor(**kwargs: object) -> ChunkExecutor:
    return ChunkExecutor(ExecutionConfig(**kwargs), DT)  # type: ignore[arg-type]


def _ramp(rows: int, start: float, step: float) -> np.ndarray:
    return np.stack([start + step * np.arange(rows), np.full(rows, start)], axis=1)


def test_crossfade_weights_row_by_row() -> None:
    ex = _executor(blend_steps=4)
    t0 = 10 * S
    ex.merge(np.zeros((16, 2)), NAMES, t0, t0)  # old plan: at 0
    now = t0 + 60 * MS  # three rows into the old plan
    new = np.ones((16, 2))
    result = ex.merge(new, NAMES, t0 + 40 * MS, now)  # new chunk's rows at t0+40+20k
    times = result.plan.times_ns
    x = np.clip((times - now) / (4 * 20 * MS), 0.0, 1.0)
    weights = x * x * (3 - 2 * x)
    np.testing.assert_allclose(result.plan.positions[:, 0], weights, atol=1e-12)
    assert result.past_points == 1 and result.plan.positions[0, 0] == 0.0  # at "now": the old plan's value
    np.testing.assert_allclose(result.plan.positions[1:6, 0], [0.15625, 0.5, 0.84375, 1.0, 1.0])
    assert result.raw_jump == pytest.approx(1.0) and result.published_jump == pytest.approx(0.0)
    assert np.max(np.abs(np.diff(result.plan.positions[:, 0]))) <= 0.375 + 1e-12  # a bounded step per row


def test_hard_switch_without_blend_steps_and_without_blending() -> None:
    for kwargs in ({"blend_steps": 0}, {"blend": "none"}):
        ex = _executor(**kwargs)
        ex.merge(np.zeros((8, 2)), NAMES, 0, 0)
        result = ex.merge(np.ones((8, 2)), NAMES, 0, 30 * MS)  # rows at 20, 40, ... ms; now = 30 ms
        if kwargs == {"blend": "none"}:
            np.testing.assert_array_equal(result.plan.positions, np.ones((8, 2)))  # the new chunk as it is
            assert result.published_jump == pytest.approx(1.0)
        else:
            np.testing.assert_array_equal(result.plan.positions[:, 0], [0.0] + [1.0] * 7)  # past row: the old plan
            assert result.published_jump == pytest.approx(0.5)  # halfway between the two rows at now
        assert result.raw_jump == pytest.approx(1.0) and result.past_points == 1


def test_another_joint_set_starts_afresh_and_commit_false_keeps_the_plan() -> None:
    ex = _executor()
    ex.merge(np.zeros((8, 2)), NAMES, 0, 0)
    other = ex.merge(np.ones((8, 2)), ("x", "y"), 0, 30 * MS, commit=False)
    assert other.raw_jump is None and other.published_jump is None
    np.testing.assert_array_equal(other.plan.positions, np.ones((8, 2)))
    assert ex.plan is not None and ex.plan.names == NAMES  # not committed
    ex.commit(other.plan)
    assert ex.plan is other.plan
    ex.reset()
    assert ex.plan is None and ex.replan_due(0)


def test_expiry_boundary_is_min_lead() -> None:
    ex = _executor(min_lead_s=0.04)
    now = 10 * S
    # last row at stamp + 8 * 20 ms; expired when it is less than 40 ms after now
    at_boundary = ex.merge(np.zeros((8, 2)), NAMES, now - 120 * MS, now, commit=False)
    assert at_boundary.plan.end_ns - now == 40 * MS and not at_boundary.expired and at_boundary.expiry_reason == ""
    late = ex.merge(np.zeros((8, 2)), NAMES, now - 121 * MS, now)
    assert late.expired and ex.plan is None
    assert late.expiry_reason.startswith("chunk expired: its last point is 39 ms from now")


def test_replan_due_exactly_at_horizon_minus_latency_and_origin() -> None:
    ex = _executor(execution_horizon=5, latency_offset_s=0.01)
    assert ex.origin_for(S, 7 * S) == S + 10 * MS
    ex.merge(np.zeros((8, 2)), NAMES, S, S)
    due = S + 10 * MS + 5 * 20 * MS
    assert not ex.replan_due(due - 1) and ex.replan_due(due)
    assert ex.replan_due(due - 30 * MS, expected_latency_s=0.03) and not ex.replan_due(due - 30 * MS - 1, 0.03)
    assert _executor(latency_compensation=False).origin_for(S, 7 * S) == 7 * S
    np.testing.assert_array_equal(ex.plan.times_ns[:3], S + 10 * MS + np.array([20, 40, 60]) * MS)  # type: ignore[union-attr]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"execution_horizon": 0}, "execution_horizon must be >= 1 row, got 0"),
    ({"blend": "cubic"}, "blend must be one of"),
    ({"blend_steps": -1}, "blend_steps must be >= 0, got -1"),
    ({"latency_offset_s": 10.5}, "latency_offset_s must be finite and within +-10 s"),
    ({"latency_offset_s": float("nan")}, "latency_offset_s must be finite"),
    ({"min_lead_s": -0.01}, "min_lead_s must be >= 0"),
])
def test_configuration_limits(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ControlConfigError, match=re.escape(message)):
        ExecutionConfig(**kwargs)  # type: ignore[arg-type]
    ExecutionConfig(execution_horizon=1, blend_steps=0, latency_offset_s=-10.0, min_lead_s=0.0)  # the edges are fine
    with pytest.raises(ControlConfigError, match="dt_s must be > 0"):
        ChunkExecutor(ExecutionConfig(), 0.0)


def test_defaults_units_and_records() -> None:
    cfg = ExecutionConfig()
    assert (cfg.execution_horizon, cfg.blend, cfg.blend_steps, cfg.latency_compensation, cfg.latency_offset_s,
            cfg.min_lead_s) == (16, "crossfade", 8, True, 0.0, 0.04)
    assert ChunkExecutor(cfg, 1.0).dt_ns == S and ChunkExecutor(cfg, 0.02).dt_ns == 20 * MS
    assert ChunkExecutor(ExecutionConfig(latency_offset_s=10.0), 1.0).origin_for(0, 0) == 10 * S
    plan = Plan(NAMES, 0, np.array([0, 1], dtype=np.int64), np.zeros((2, 2)))  # 1 ns apart is strictly increasing
    assert plan.velocities is None
    result = ChunkExecutor(cfg, DT).merge(np.zeros((4, 2)), NAMES, 0, 0)
    for record in (cfg, plan, result):
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.names = ()  # type: ignore[misc, union-attr]
    np.testing.assert_allclose(_plan().sample_velocity(100 * MS), [50.0, 0.0])  # at the first point: moving


def test_switch_time_on_a_row_keeps_that_row_on_the_old_plan() -> None:
    for steps in (0, 4):
        ex = _executor(blend_steps=steps)
        ex.merge(np.zeros((8, 2)), NAMES, 0, 0)
        result = ex.merge(np.ones((8, 2)), NAMES, 0, 40 * MS)  # rows at 20, 40, ...: the second row is "now"
        assert np.all(np.isfinite(result.plan.positions))
        assert result.plan.positions[1, 0] == 0.0 and result.published_jump == 0.0
        assert result.plan.positions[2, 0] == (1.0 if steps == 0 else pytest.approx(0.15625))
