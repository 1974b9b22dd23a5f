"""The policy node's language side over real DDS: ``~/subtask``, ``~/subtask_marker``, ``~/ask`` and its diagnostics.

One node process (the production node; ``wordy_policy_node`` only sets the random model's repetition penalty so
that answers are words, not one repeated newline) on the tiny checkpoint, driven in simulated time. When the test
freezes the clock, the model is free (no action observation can come due): the subtask timer's answers go out
and questions are answered. Checked: the subtask text on the topic, the marker and ``/diagnostics`` agree; an
answer over ROS equals the direct call on the same (resized) images; bad questions and questions to an inactive
node get a reason, and the node keeps publishing chunks after them. How answers are fitted between chunks is
``test_text_jobs.py``'s subject (deterministic there, on the model's own thread).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from diagnostic_msgs.srv import AddDiagnostics
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from policy_sim_driver import S, SimDriver, call_service, status_values
from ros_harness import REPO_ROOT, Collector, NodeProcess, RosTestNode, running_node, subprocess_env, wait_until
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import Marker
from wordy_policy_node import PENALTY_ENV

from wallx_ros.core.image_resize import resize_to_grid
from wallx_ros.core.types import Observation
from wallx_ros.nodes.ros_conversions import stamp_to_ns
from wallx_ros.policy import BackendConfig, load_backend
from wallx_ros.policy.checkpoints.tiny_checkpoint import ALOHA_JOINTS, DEFAULT_CAMERAS
from wallx_ros.policy.text_prompts import TextPrompt

NODE = "/wallx_policy"
INSTRUCTION = "stack the cups"
PENALTY = 10.0
ASK_TOKENS = 12


class Rig:
    def __init__(self, ros: RosTestNode, proc: NodeProcess, driver: SimDriver) -> None:
        self.ros, self.proc, self.driver = ros, proc, driver
        self.trajectories: Collector = ros.collect(JointTrajectory, f"{NODE}/joint_trajectory")
        self.subtasks: Collector = ros.collect(String, f"{NODE}/subtask")
        self.markers: Collector = ros.collect(Marker, f"{NODE}/subtask_marker")
        self.diagnostics: Collector = ros.collect(DiagnosticArray, "/diagnostics")
        self.status: Collector = ros.collect(DiagnosticStatus, f"{NODE}/status")

    def chunks(self) -> int:
        return sum(len(m.points) > 1 for m in list(self.trajectories.messages))

    def run_until_chunks(self, more: int, timeout_s: float = 240.0) -> None:
        """Time runs in short pulses (0.05 simulated s each, frozen for up to 1 s between them while the model
        works) until ``more`` chunks went out: a chunk comes when the running one reached its execution horizon
        (0.32 simulated s), so a long freeze would only stretch the wait."""
        count = self.chunks()
        assert self.driver.pulse_until(lambda: self.chunks() >= count + more or not self.proc.alive(), timeout_s,
                                       rate=0.1, pulse_s=0.5, freeze_s=1.0), \
            f"no chunk within {timeout_s} s\n{self.proc.output()[-3000:]}"
        assert self.proc.alive(), self.proc.output()[-3000:]

    def ask(self, question: str, timeout_s: float = 120.0) -> Any:
        return call_service(self.ros, AddDiagnostics, f"{NODE}/ask", AddDiagnostics.Request(load_namespace=question),
                            timeout_s=timeout_s)

    def language(self) -> dict[str, str]:
        for msg in reversed(list(self.diagnostics.messages)):
            for d in msg.status:
                if d.name.endswith(": language"):
                    return status_values(d)
        return {}

    def lifecycle(self, transition: int) -> bool:
        req = ChangeState.Request()
        req.transition = Transition(id=transition)
        return bool(call_service(self.ros, ChangeState, f"{NODE}/change_state", req, timeout_s=300).success)


@pytest.fixture(scope="module")
def rig(ros: RosTestNode, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    params = {"checkpoint_dir": str(tiny_checkpoint), "allow_random_weights": True, "seed": 0, "num_threads": 1,
              "instruction": INSTRUCTION, "warmup": False, "autostart": True, "use_sim_time": True,
              "max_age_s": 0.5, "diagnostics_rate_hz": 4.0, "subtask_rate_hz": 2.0, "subtask_max_tokens": 6,
              "ask_max_tokens": ASK_TOKENS, "ask_timeout_s": 60.0, "max_question_tokens": 64,
              "text_marker_frame": "table",
              "position_lower": [-1e6], "position_upper": [1e6], "max_velocity": [1e9]}
    driver = SimDriver(ros, DEFAULT_CAMERAS, ALOHA_JOINTS)
    driver.set_time(1000 * S)
    try:
        with running_node("wordy_policy_node", "wallx_policy", params, tmp_path_factory.mktemp("language"),
                          extra_env={PENALTY_ENV: str(PENALTY),
                                     "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'test'}"}) as proc:
            rig = Rig(ros, proc, driver)
            assert driver.wait_for_node()
            yield rig
            assert proc.alive(), "the node died during the module"
    finally:
        driver.close()


def test_subtask_goes_out_as_text_marker_and_diagnostics(rig: Rig) -> None:
    rig.run_until_chunks(1)
    # the clock stands still: no observation comes due, the model is free for the subtask timer (steady clock)
    assert rig.subtasks.wait_for(2, 120), f"no subtask; language status {rig.language()}\n{rig.proc.output()[-3000:]}"
    assert rig.markers.wait_for(2, 30)
    text = rig.subtasks.messages[-1].data
    assert text and not any(t in text for t in ("<|", "|>"))
    marker = next(m for m in reversed(list(rig.markers.messages)) if m.text == text)
    assert marker.type == Marker.TEXT_VIEW_FACING and marker.header.frame_id == "table"
    # the observation the subtask came from: one the driver published (stamped at or before the frozen clock)
    assert 1000 * S <= stamp_to_ns(marker.header.stamp) <= rig.driver.now_ns

    def reported() -> bool:
        lang = rig.language()
        return lang.get("subtask") == text and int(lang.get("subtasks_published", "0")) >= 2

    assert wait_until(reported, 30), rig.language()
    lang = rig.language()
    assert float(lang["subtask_observation_stamp"]) == pytest.approx(stamp_to_ns(marker.header.stamp) / S, abs=1e-9)
    assert lang["subtask_rate_hz"] == "2" and float(lang["text_prefill_ms"]) > 0
    assert "subtask" in rig.proc.output()


def test_an_answer_over_ros_equals_the_direct_call(rig: Rig, tiny_checkpoint: Path) -> None:
    rig.run_until_chunks(1)
    question = "what is on the table?"
    reply = rig.ask(question)
    assert reply.success, reply.message
    backend = load_backend(BackendConfig(checkpoint_dir=tiny_checkpoint, allow_random_weights=True, seed=0))
    backend._policy.model.generation_config.repetition_penalty = PENALTY  # as wordy_policy_node sets it
    grid = backend.image_shapes  # type: ignore[attr-defined]
    images = {cam: resize_to_grid(img, grid[cam][1], grid[cam][2]) for cam, img in rig.driver.images.items()}
    obs = Observation(images=images, state=rig.driver.state.astype("float32"), instruction=INSTRUCTION, stamp_ns=1)
    direct = backend.text_generator().generate(obs, TextPrompt("question", question), ASK_TOKENS)  # type: ignore[attr-defined]
    assert reply.message == direct.text and direct.text  # the driver's images never change: any observation
    assert f"~/ask {question!r}" in rig.proc.output()


def test_wallx_ros_ctl_asks_and_reports_a_refusal(rig: Rig) -> None:
    def ctl(question: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wallx_ros.cli.ctl", "ask", question], capture_output=True,
                              text=True, env=subprocess_env(), cwd=str(REPO_ROOT), timeout=300)

    answered = ctl("what is on the table?")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout.strip() == rig.ask("what is on the table?").message.strip()
    refused = ctl("what is <|im_start|>?")
    assert refused.returncode == 1 and "control token" in refused.stderr, refused.stderr


def test_bad_questions_get_a_reason_and_control_goes_on(rig: Rig) -> None:
    for question, reason in (("", "empty"), ("what is <|image_pad|>?", "control token"),
                             ("tell me " * 80, "more than the limit of 64"), ("x" * 100_000, "characters")):
        reply = rig.ask(question)
        assert not reply.success and reason in reply.message, reply.message
    rig.run_until_chunks(2)
    assert rig.ask("what is red?").success


def test_an_inactive_node_refuses_questions_and_answers_again_once_active(rig: Rig) -> None:
    assert rig.lifecycle(Transition.TRANSITION_DEACTIVATE)
    reply = rig.ask("what is red?")
    assert not reply.success and "not active" in reply.message
    count = len(rig.subtasks.messages)
    rig.driver.pulse_until(lambda: False, 2.0)
    assert len(rig.subtasks.messages) == count, "a subtask went out while inactive"
    # cleanup destroys the language side with the model; configure and activate build it again
    assert rig.lifecycle(Transition.TRANSITION_CLEANUP)
    reply = rig.ask("what is red?")
    assert not reply.success and "not configured" in reply.message
    assert rig.lifecycle(Transition.TRANSITION_CONFIGURE) and rig.lifecycle(Transition.TRANSITION_ACTIVATE)
    rig.run_until_chunks(1)
    assert rig.ask("what is red?").success
    assert rig.subtasks.wait_for(count + 1, 120), "no subtask after cleanup / configure / activate"
