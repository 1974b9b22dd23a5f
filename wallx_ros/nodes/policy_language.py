"""The policy node's language side in ROS: ``~/subtask``, ``~/subtask_marker`` and ``~/ask``.

WALL-OSS answers in words from the same images as its action chunks (``policy.text_generation``); the model's
thread fits those answers between chunks (``policy.text_jobs``). This adapter only translates:

* ``~/subtask`` (std_msgs/String, lifecycle publisher): the model's current subtask for the instruction, from
  the newest observation, at ``subtask_rate_hz`` (steady clock); the text also goes out as a TEXT_VIEW_FACING
  ``visualization_msgs/Marker`` on ``~/subtask_marker`` (frame ``text_marker_frame``) for RViz, and with its
  observation stamp, timings and counts in ``/diagnostics`` (status ``<node>: language``).
* ``~/ask`` (served by the node in every state; answered here while active): a question about the scene in,
  the answer out, within ``ask_timeout_s`` and ``ask_max_tokens``. The service type is
  ``diagnostic_msgs/srv/AddDiagnostics`` (request ``load_namespace`` = the question, response ``success`` +
  ``message`` = the answer or why there is none): the one standard string-in / string-out service every ROS 2
  install and the pip venv have, so no interface package must be built first.
  ``ros2 service call /wallx_policy/ask diagnostic_msgs/srv/AddDiagnostics "{load_namespace: 'what is on the
  table?'}"`` or ``wallx-ros-ctl ask "what is on the table?"``.

Results arrive on the model's thread and are handed to the executor through a guard condition (all publishing
happens in executor callbacks, as for action chunks).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode
from std_msgs.msg import String
from visualization_msgs.msg import Marker

from wallx_ros.nodes.policy_parameters import LanguageConfig
from wallx_ros.nodes.ros_conversions import time_from_ns
from wallx_ros.policy.text_jobs import TextJob, TextJobResult, TextScheduler
from wallx_ros.policy.text_prompts import TextPrompt

__all__ = ["PolicyLanguage", "answer_line"]

_GRACE_S = 5.0  # the service waits this much past the deadline for the unit that runs at it
_MAX_QUESTION_CHARS = 65_536


def answer_line(result: TextJobResult) -> str:
    """One log line about a finished answer."""
    answer = result.answer
    if answer is None:
        return f"no answer: {result.error}"
    return (f"{answer.kind} ({answer.stop_reason}, {answer.new_tokens} tokens, prefill {answer.prefill_ms:.0f} ms, "
            f"tokens {answer.decode_ms:.0f} ms, waited {result.waited_ms:.0f} ms): {answer.text[:200]!r}")


class PolicyLanguage:
    """Subtask publisher, text marker and question service of one configuration of the policy node."""

    def __init__(self, node: LifecycleNode, cfg: LanguageConfig, scheduler: TextScheduler,
                 instruction: Callable[[], str], active: Callable[[], bool], wake_worker: Callable[[], None]) -> None:
        self._node = node
        self.cfg = cfg
        self._scheduler = scheduler
        self._instruction = instruction
        self._active = active
        self._wake_worker = wake_worker
        self._lock = threading.Lock()
        self._finished: list[TextJobResult] = []
        self.last_subtask: TextJobResult | None = None
        self._group = MutuallyExclusiveCallbackGroup()
        self._pub = node.create_lifecycle_publisher(String, "~/subtask", 10)
        self._marker_pub = node.create_lifecycle_publisher(Marker, "~/subtask_marker", 1)
        self._ready = node.create_guard_condition(self._publish_finished, callback_group=self._group)
        self._timer = None
        if cfg.subtask_rate_hz > 0:  # steady clock: the model's time is wall time, also on simulated time
            self._timer = node.create_timer(1.0 / cfg.subtask_rate_hz, self._request_subtask,
                                            callback_group=self._group, clock=Clock(clock_type=ClockType.STEADY_TIME))

    def destroy(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._node.destroy_timer(self._timer)
        self._node.destroy_guard_condition(self._ready)
        self._node.destroy_lifecycle_publisher(self._pub)  # (also leaves the node's managed entities)
        self._node.destroy_lifecycle_publisher(self._marker_pub)

    # -- subtask ------------------------------------------------------------------------------------------
    def _request_subtask(self) -> None:
        """Timer: ask for the subtask of the current instruction (none without an instruction)."""
        instruction = self._instruction()
        if not self._active() or not instruction:
            return
        period = 1.0 / self.cfg.subtask_rate_hz
        self._scheduler.submit_subtask(TextJob(TextPrompt("subtask", instruction), self.cfg.subtask_max_tokens,
                                               time.monotonic() + period, self._on_subtask_done))
        self._wake_worker()

    def _on_subtask_done(self, result: TextJobResult) -> None:
        """The model's thread: hand the result to the executor."""
        with self._lock:
            self._finished.append(result)
        self._ready.trigger()

    def _publish_finished(self) -> None:
        with self._lock:
            finished, self._finished = self._finished, []
        for result in finished:
            if result.answer is None:
                continue  # skipped (counted) or failed: the diagnostics say so
            self.last_subtask = result
            self._node.get_logger().info(f"subtask: {answer_line(result)}", throttle_duration_sec=10.0)
            self._pub.publish(String(data=result.answer.text))
            self._marker_pub.publish(self._marker(result.answer.text, result.answer.observation_stamp_ns))

    def _marker(self, text: str, stamp_ns: int) -> Marker:
        m = Marker()
        m.header.frame_id = self.cfg.marker_frame
        m.header.stamp = time_from_ns(stamp_ns)
        m.ns, m.id = "wallx_subtask", 0
        m.type, m.action = Marker.TEXT_VIEW_FACING, Marker.ADD
        m.pose.position.z = 1.0
        m.pose.orientation.w = 1.0
        m.scale.z = 0.05
        m.color.r, m.color.g, m.color.b, m.color.a = 1.0, 1.0, 1.0, 1.0
        m.text = text
        return m

    # -- questions ----------------------------------------------------------------------------------------
    def ask(self, question: str) -> tuple[bool, str]:
        """Answer ``question`` about the newest observation: (True, answer) or (False, why not). Blocks the
        calling service thread (its own callback group) until the answer, the deadline or a refusal."""
        if not self._active():
            return False, "the policy node is not active: activate it first"
        if len(question) > _MAX_QUESTION_CHARS:  # not even worth tokenizing (a token is rarely over 16 characters)
            return False, f"the question has {len(question)} characters, more than {_MAX_QUESTION_CHARS}"
        done = threading.Event()
        holder: list[TextJobResult] = []

        def finished(result: TextJobResult) -> None:
            holder.append(result)
            done.set()

        deadline = time.monotonic() + self.cfg.ask_timeout_s
        refusal = self._scheduler.submit_question(TextJob(TextPrompt("question", question), self.cfg.ask_max_tokens,
                                                          deadline, finished))
        if refusal:
            return False, refusal
        self._wake_worker()
        if not done.wait(self.cfg.ask_timeout_s + _GRACE_S) or not holder:
            return False, f"no answer within {self.cfg.ask_timeout_s:g} s"
        result = holder[0]
        self._node.get_logger().info(f"~/ask {question[:80]!r}: {answer_line(result)}")
        if result.answer is None:
            return False, result.error
        return True, result.answer.text

    # -- diagnostics --------------------------------------------------------------------------------------
    def diagnostic(self, name: str) -> DiagnosticStatus:
        """``<node>: language``: the last subtask with its observation stamp, counts and unit times."""
        c = self._scheduler.counters()
        last = self.last_subtask.answer if self.last_subtask is not None else None
        values = {"subtask": last.text if last else "", "subtask_stop_reason": last.stop_reason if last else "",
                  "subtask_observation_stamp": f"{last.observation_stamp_ns / 1e9:.9f}" if last else "",
                  "subtask_rate_hz": f"{self.cfg.subtask_rate_hz:g}", "subtasks_published": str(c.subtasks_done),
                  "subtasks_skipped": str(c.subtasks_skipped), "questions_answered": str(c.questions_done),
                  "questions_refused": str(c.questions_refused), "text_units_deferred": str(c.units_deferred),
                  "text_prefill_ms": f"{c.prefill_ms:.1f}", "text_token_ms": f"{c.token_ms:.1f}"}
        message = f"subtask: {last.text[:80]}" if last else (
            "subtask off (subtask_rate_hz 0)" if self.cfg.subtask_rate_hz <= 0 else "no subtask yet")
        return DiagnosticStatus(name=name, hardware_id="wallx_policy", level=DiagnosticStatus.OK, message=message,
                                values=[KeyValue(key=k, value=v) for k, v in values.items()])
