"""Real-time chunking without a model: row weights, guidance gain and its clipping, the online delay estimate,
the running-plan prefix (grid, frozen rows, inverse action mapping) and the c1 blend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.chunk_execution import ChunkExecutor, ExecutionConfig, Plan
from wallx_ros.core.errors import ControlConfigError
from wallx_ros.core.inference_delay import InferenceDelayEstimator
from wallx_ros.core.policy_control import ControlConfig, PolicyControl
from wallx_ros.core.realtime_chunking import RtcConfig, guidance_gain, guidance_gains, prefix_weights
from wallx_ros.core.safety import JointLimits, SafetyFilter
from wallx_ros.core.switch_smoothness import measure_switch

MS = 1_000_000
S = 1_000_000_000
DT = 0.02
NAMES = ("a", "b")


# -- weights and gain -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", ["exp", "linear", "ones", "zeros"])
def test_prefix_weights_freeze_then_follow_the_schedule(schedule: str) -> None:
    w = prefix_weights(4, 16, schedule)
    assert w.shape == (16,) and np.all(w[:4] == 1.0) and np.all((w >= 0) & (w <= 1))
    soft = w[4:]
    if schedule == "ones":
        assert np.all(soft == 1.0)
    elif schedule == "zeros":
        assert np.all(soft == 0.0)
    else:  # decays from near 1 right after the frozen rows towards 0 at the end of the overlap
        assert np.all(np.diff(soft) < 0) and soft[0] > 0.75 and soft[-1] < 0.1
    if schedule == "exp":  # the paper's c * (e^c - 1) / (e - 1), c = (H - i) / (H - d + 1)
        c = (16 - 4) / (16 - 4 + 1)
        assert soft[0] == pytest.approx(c * math.expm1(c) / (math.e - 1))
    with pytest.raises(ControlConfigError):
        prefix_weights(17, 16, schedule)


def test_guidance_gain_follows_the_paper_and_is_clipped() -> None:
    """min(beta, (1 - t) / (t r_t^2)) with r_t^2 = (1-t)^2 / (t^2 + (1-t)^2), and at most 1/dt (one Euler step must
    not overshoot the prefix in the prefix-error form)."""
    dt = 0.1
    for t in (0.1, 0.3, 0.5, 0.7, 0.9):
        r2 = (1 - t) ** 2 / (t**2 + (1 - t) ** 2)
        paper = (1 - t) / (t * r2)
        assert guidance_gain(t, dt, 1e9) == pytest.approx(min(paper, 1 / dt))
        assert guidance_gain(t, dt, 3.0) == pytest.approx(min(paper, 3.0))  # clipped at max_guidance
    assert guidance_gain(0.5, dt, 100.0) == pytest.approx(2.0)  # the unclipped value in the middle
    assert guidance_gain(0.0, dt, 5.0) == 5.0  # the limit at t = 0 is infinite: the cap
    assert guidance_gain(0.0, dt, 50.0) == pytest.approx(10.0)  # ... and never beyond 1 / dt
    assert guidance_gain(0.9, 0.01, 50.0) == pytest.approx((0.01 + 0.81) / 0.09)  # finer steps: the formula
    gains = guidance_gains(np.linspace(0, 1, 11).tolist(), 10.0)
    assert len(gains) == 10 and max(gains) <= 10.0 + 1e-12 and min(gains) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        guidance_gain(1.0, dt, 10.0)
    with pytest.raises(ControlConfigError):
        RtcConfig(max_guidance=0.0)


# -- delay estimate ---------------------------------------------------------------------------------------------
def test_delay_estimate_follows_a_changed_latency() -> None:
    est = InferenceDelayEstimator(percentile=90.0, window=20)
    assert est.estimate_s() is None and est.steps(DT) == 0
    for _ in range(20):
        est.record(0.065)
    assert est.steps(DT) == 3  # rows at 20, 40, 60 ms lie before 65 ms
    for i in range(3):  # the model got slower: after a few chunks d covers the new latency
        est.record(0.150)
        if i >= 2:
            assert est.steps(DT) == 7
    for _ in range(17):  # faster again: d shrinks only once most of the window saw it (the p90 errs long)
        est.record(0.065)
        assert est.steps(DT) == 7
    est.record(0.065)  # two slow ones left in 20: below the 90th percentile
    assert est.steps(DT) == 3
    est.record(float("nan"))
    est.record(-1.0)  # clock jumps are ignored
    assert est.count == 20


# -- the running-plan prefix ------------------------------------------------------------------------------------
def _plan_executor(latency_compensation: bool = True) -> ChunkExecutor:
    ex = ChunkExecutor(ExecutionConfig(latency_compensation=latency_compensation), DT)
    t = np.arange(1, 33) * DT
    ex.merge(np.stack([np.sin(3 * t), t], axis=1), NAMES, 10 * S, 10 * S)
    times = ex.plan.times_ns
    ex.commit(Plan(NAMES, ex.plan.origin_ns, times, ex.plan.positions,
                   np.gradient(ex.plan.positions, times / S, axis=0)))
    return ex


def test_prefix_is_the_running_plan_on_its_own_grid() -> None:
    ex = _plan_executor()
    plan = ex.plan
    assert plan is not None
    # observation 305 ms after the first one: its origin snaps to the plan's 20 ms grid (300 ms), so the prefix
    # rows are published points of the running plan, not interpolated values
    prefix = ex.prefix(10 * S + 305 * MS, delay_s=0.095, rows=32)
    assert prefix is not None
    assert prefix.origin_ns == 10 * S + 300 * MS
    np.testing.assert_array_equal(prefix.positions, plan.positions[15:])
    assert len(prefix.times_ns) == 17  # the rows the running plan still covers
    # rows at or before the take-over (305 + 95 ms): 320, 340, 360, 380, 400 -> d = 5, + 2 rows shaping the switch
    assert prefix.delay_steps == 5 and prefix.frozen == 7
    later = ex.prefix(10 * S + 305 * MS, delay_s=0.2, rows=32)
    assert later is not None and later.delay_steps == 10
    assert ex.prefix(10 * S + 700 * MS, 0.05, 32) is None  # past the plan's end: nothing to continue
    no_comp = _plan_executor(latency_compensation=False).prefix(10 * S + 310 * MS, 0.095, 32)
    assert no_comp is not None and no_comp.frozen == 0  # such a chunk starts when it arrives
    assert no_comp.origin_ns == 10 * S + 405 * MS


def test_inverse_action_mapping_round_trips() -> None:
    mapping = ActionMapping.build(("a", "b", "c"), ("b", "a"), "delta", gripper_joints=("b",), gripper_scale=0.04,
                                  gripper_offset=0.01)
    state = np.array([0.3, 0.02, -1.0])
    actions = np.random.default_rng(0).normal(size=(8, 2))
    targets = mapping.actions_to_robot(actions, state)
    np.testing.assert_allclose(mapping.robot_to_actions(targets, state), actions, atol=1e-12)


def test_rtc_request_maps_the_plan_back_to_model_actions() -> None:
    mapping = ActionMapping.build(NAMES, NAMES, "delta", gripper_joints=("b",), gripper_scale=2.0)
    control = PolicyControl(ControlConfig(rtc=RtcConfig(enabled=True, schedule="exp")), mapping,
                            SafetyFilter(JointLimits.unlimited(NAMES)), DT)
    control.activate(0)
    state = np.array([0.1, 0.2])
    chunk = np.random.default_rng(1).normal(size=(32, 2)) * 0.1
    assert control.rtc_request(10 * S, state) is None  # no running plan yet
    assert control.on_chunk(chunk, state, 10 * S, 10 * S).published
    control.delay.record(0.05)
    request = control.rtc_request(10 * S + 200 * MS, state)
    assert request is not None
    # the prefix is the plan expressed as model actions for this observation: mapping it forward gives the plan
    np.testing.assert_allclose(mapping.actions_to_robot(request.prefix.actions, state), request.robot.positions,
                               atol=1e-12)
    assert request.prefix.frozen == request.robot.frozen == 4  # 2 rows before the take-over + 2
    np.testing.assert_array_equal(request.prefix.weights[:4], 1.0)
    # a chunk that reproduces the prefix: no prefix error, no blending; the switch is smooth
    follow = np.vstack([request.prefix.actions, request.prefix.actions[-1:].repeat(32 - 22, axis=0)])
    out = control.on_chunk(follow, state, 10 * S + 200 * MS, 10 * S + 250 * MS, rtc=request)
    assert out.published and out.prefix_error == pytest.approx(0.0, abs=1e-12) and out.frozen_steps == 4
    assert out.delay_steps == 2 and out.switch is not None
    assert out.switch.position_jump < 1e-9 and out.switch.velocity_jump < 1e-6


# -- c1 blend ---------------------------------------------------------------------------------------------------
def _two_plans(blend: str, amax: float | None = None,
               vmax: float = 5.0) -> tuple[ChunkExecutor, Plan, Plan, int, np.ndarray]:
    ex = ChunkExecutor(ExecutionConfig(blend=blend, blend_steps=4), DT, max_velocity=np.full(2, vmax),
                       max_acceleration=None if amax is None else np.full(2, amax))
    t = np.arange(1, 33) * DT
    first = np.stack([1.5 * t, -t], axis=1)
    ex.merge(first, NAMES, 10 * S, 10 * S)
    safety = SafetyFilter(JointLimits.unlimited(NAMES))
    old = ex.plan
    assert old is not None
    old = Plan(NAMES, old.origin_ns, old.times_ns, old.positions, safety.velocities(old.times_ns / S, old.positions))
    ex.commit(old)
    now = 10 * S + 250 * MS
    second = np.stack([0.6 - 1.0 * t, 0.2 + 0.5 * t], axis=1)  # other position AND direction
    res = ex.merge(second, NAMES, 10 * S + 200 * MS, now)
    new = Plan(NAMES, res.plan.origin_ns, res.plan.times_ns, res.plan.positions,
               safety.velocities(res.plan.times_ns / S, res.plan.positions))
    return ex, old, new, now, second


def test_c1_blend_keeps_position_and_velocity_continuous() -> None:
    figures = {}
    for blend in ("none", "crossfade", "c1"):
        _, old, new, now, _ = _two_plans(blend, amax=20.0)
        figures[blend] = measure_switch(old, new, now, 10 * MS)
    assert figures["none"].position_jump > 0.3
    assert figures["crossfade"].position_jump < 0.02 < figures["crossfade"].velocity_jump
    assert figures["c1"].position_jump < 2e-3 and figures["c1"].velocity_jump < 0.1
    assert figures["c1"].velocity_jump < figures["crossfade"].velocity_jump / 5
    assert figures["c1"].peak_acceleration < figures["crossfade"].peak_acceleration


def test_c1_blend_width_respects_max_acceleration() -> None:
    """The blend adds w(s) * (new - old): with a lower max_acceleration it must take longer, long enough that the
    blend's own acceleration (6 |d| / T^2 + 3 |d'| / T) stays within the limit."""
    widths = {}
    for amax in (1e6, 100.0, 40.0):
        ex, old, new, now, raw = _two_plans("c1", amax=amax, vmax=math.inf)
        widths[amax] = ex.last_blend_ns / S
        diff = raw - old.sample_controller(new.times_ns)[0]
        future = new.times_ns > now
        dp = np.abs(diff[future]).max(axis=0)  # per joint
        dv = (np.abs(np.diff(diff[future], axis=0)) / DT).max(axis=0)
        if widths[amax] < (new.end_ns - now) / S:  # not cut short by the chunk's end: the bound holds
            assert np.all(6 * dp / widths[amax] ** 2 + 3 * dv / widths[amax] <= amax * (1 + 1e-6))
    assert widths[1e6] == pytest.approx(4 * DT)  # blend_steps when the limits allow it
    assert widths[1e6] < widths[100.0] < widths[40.0]
    ex, *_ = _two_plans("c1", amax=1e6, vmax=1.0)  # max_velocity stretches it too
    assert ex.last_blend_ns / S > 4 * DT


def test_rtc_and_blend_settings_are_validated() -> None:
    with pytest.raises(ControlConfigError, match="rtc_schedule"):
        RtcConfig(schedule="cosine")
    with pytest.raises(ControlConfigError, match="rtc_delay_percentile"):
        RtcConfig(delay_percentile=120.0)
    with pytest.raises(ControlConfigError, match="blend"):
        ExecutionConfig(blend="c2")


def test_a_request_for_a_replaced_plan_is_ignored() -> None:
    """A chunk computed against a plan that another chunk replaced meanwhile is joined like any other (blend),
    never snapped to or measured against the stale plan."""
    mapping = ActionMapping.build(NAMES, NAMES)
    control = PolicyControl(ControlConfig(ExecutionConfig(blend="crossfade"), rtc=RtcConfig(enabled=True)), mapping,
                            SafetyFilter(JointLimits.unlimited(NAMES)), DT)
    control.activate(0)
    chunk = np.zeros((32, 2))
    assert control.on_chunk(chunk, None, 10 * S, 10 * S).published
    stale = control.rtc_request(10 * S + 105 * MS, None)
    assert stale is not None and stale.source is control.executor.plan
    assert control.on_chunk(chunk + 0.1, None, 10 * S + 100 * MS, 10 * S + 150 * MS).published  # replaces it
    out = control.on_chunk(chunk + 0.2, None, 10 * S + 105 * MS, 10 * S + 200 * MS, rtc=stale)
    assert out.published and out.prefix_error is None and out.delay_steps is None
    assert out.plan is not None and out.plan.origin_ns == 10 * S + 105 * MS  # not snapped to the stale grid
