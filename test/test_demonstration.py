"""The demonstration sequencer (what the expert node runs) and the ROS-free closed-loop rollout, on the real scene.

The sequencer's requests are served here the way the nodes serve them (reset = the scene placed for the
seed, start/save/discard = answered), the leader command goes through the simulator's command limits, and
the outcome is judged by gym-aloha's stage of the real MuJoCo scene.
"""

from __future__ import annotations

import numpy as np
import pytest

from wallx_ros.sim.aloha_scene import AlohaScene
from wallx_ros.sim.demonstration import DemoConfig, DemoRequest, DemoSequencer, Phase
from wallx_ros.sim.transfer_cube import CUBE_BODY, plan_transfer_cube, transfer_cube_stage

PERIOD_S = 0.02


def _run(sequencer: DemoSequencer, sim: AlohaScene, *, follow: bool = True, refuse: DemoRequest | None = None,
         max_s: float = 120.0) -> list[DemoRequest]:
    """Serve the sequencer until it is done; returns the requests in order."""
    requests: list[DemoRequest] = []
    command = sim.command()
    t = 0.0
    while sequencer.phase is not Phase.DONE and t < max_s:
        leader = sequencer.step(t, sim.positions(), (t, sim.object_poses()[CUBE_BODY][:3]), transfer_cube_stage(sim))
        if sequencer.pending is not None:
            request = sequencer.pending
            requests.append(request)
            if request is DemoRequest.RESET:
                sim.reset(sequencer.seed)
                command = sim.command()
            sequencer.done(request, request is not refuse, t, "refused" if request is refuse else "")
        if follow:
            command, _ = sim.limits.saturate(leader, command, PERIOD_S)
            sim.set_command(command)
        sim.advance(round(PERIOD_S / sim.timestep_s))
        t += PERIOD_S
    return requests


def test_sequencer_records_successful_demonstrations_one_seed_each() -> None:
    sim = AlohaScene("aloha_transfer_cube")
    sequencer = DemoSequencer(AlohaScene("aloha_transfer_cube"), DemoConfig(episodes=2, first_seed=3))
    requests = _run(sequencer, sim)
    assert sequencer.phase is Phase.DONE and sequencer.kept == 2
    assert requests == [DemoRequest.RESET, DemoRequest.START, DemoRequest.SAVE] * 2
    assert [(r.seed, r.final_stage, r.kept) for r in sequencer.records] == [(3, 4, True), (4, 4, True)]
    # the plan was made from the cube pose it was given: seeds 3 and 4 place the cube differently
    assert np.linalg.norm(np.subtract(sequencer.records[0].cube, sequencer.records[1].cube)) > 0.01
    assert all(r.note == "" for r in sequencer.records)


def test_sequencer_discards_failures_and_gives_up_after_max_attempts() -> None:
    sim = AlohaScene("aloha_transfer_cube")
    config = DemoConfig(episodes=2, first_seed=0, max_attempts=2, home_timeout_s=0.5)
    sequencer = DemoSequencer(AlohaScene("aloha_transfer_cube"), config)
    requests = _run(sequencer, sim, follow=False)  # the follower never moves: the task fails
    assert requests == [DemoRequest.RESET, DemoRequest.START, DemoRequest.DISCARD] * 2
    assert sequencer.kept == 0 and sequencer.phase is Phase.DONE
    assert [r.final_stage for r in sequencer.records] == [0, 0]


def test_a_refused_recording_start_abandons_the_attempt() -> None:
    sim = AlohaScene("aloha_transfer_cube")
    sequencer = DemoSequencer(AlohaScene("aloha_transfer_cube"), DemoConfig(episodes=1, max_attempts=2))
    requests = _run(sequencer, sim, refuse=DemoRequest.START)
    assert requests == [DemoRequest.RESET, DemoRequest.START] * 2
    assert sequencer.kept == 0 and "start failed: refused" in sequencer.records[0].note


def test_plan_from_a_given_cube_position_equals_the_plan_from_the_scene() -> None:
    sim = AlohaScene("aloha_transfer_cube", seed=5)
    planner = AlohaScene("aloha_transfer_cube", seed=11)  # its own cube is elsewhere
    cube = sim.object_poses()[CUBE_BODY][:3]
    a, b = plan_transfer_cube(sim), plan_transfer_cube(planner, cube_position=cube)
    for t in np.linspace(0.0, a.duration_s, 25):
        np.testing.assert_allclose(a.command_at(t), b.command_at(t), atol=1e-6)
    with pytest.raises(Exception, match="3 finite numbers"):
        plan_transfer_cube(planner, cube_position=np.array([0.1, np.nan, 0.02]))
