"""``wallx-ros-ctl``: operate the wallx_ros nodes where ros2cli is not installed (the pip venv), rclpy only.

    wallx-ros-ctl status [--node /wallx_policy]          # the nodes' /diagnostics, summarised
    wallx-ros-ctl lifecycle get|configure|activate|deactivate|cleanup|shutdown
    wallx-ros-ctl pause | resume                         # std_srvs/Trigger ~/pause, ~/resume
    wallx-ros-ctl estop [--release]                      # std_srvs/SetBool ~/estop
    wallx-ros-ctl instruction "pick up the red cube"     # policy: the instruction parameter; recorder: ~/instruction
    wallx-ros-ctl ask "what is on the table?"            # policy ~/ask: the model's answer about the scene
    wallx-ros-ctl record start|stop|discard              # recorder ~/start_episode, ~/stop_episode, ~/discard_episode

Each command is what the README does with ros2cli (``ros2 service call``, ``ros2 lifecycle set``, ``ros2 param
set``, ``ros2 topic echo /diagnostics``), with an answer to wait for: it prints the node's reply and exits 0 when
the node did it, 1 when the node refused (with its reason) or did not answer within ``--timeout``. It runs in the
environment of ``source scripts/env.sh`` (loopback-only DDS, the project's ROS_DOMAIN_ID).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["main"]

DEFAULT_NODE = {"record": "/wallx_recorder"}  # other commands: /wallx_policy
LIFECYCLE_TRANSITIONS = ("configure", "activate", "deactivate", "cleanup", "shutdown")
RECORD_SERVICES = {"start": "start_episode", "stop": "stop_episode", "discard": "discard_episode"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wallx-ros-ctl", description="Operate the wallx_ros nodes with rclpy only "
                                     "(where ros2cli is not installed): status, lifecycle, pause, resume, e-stop, "
                                     "instruction, questions to the model, recorder episodes.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--node", help="the node (default /wallx_policy; record: /wallx_recorder)")
    common.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the node (default 30)")
    sub = parser.add_subparsers(dest="command", required=True)
    status = sub.add_parser("status", parents=[common], help="summary of the nodes' /diagnostics")
    status.add_argument("--all", action="store_true", help="every node's diagnostics, not only --node's")
    status.add_argument("--window", type=float, default=2.5,
                        help="--all: seconds to keep collecting after the first message (default 2.5)")
    lifecycle = sub.add_parser("lifecycle", parents=[common], help="get the state or make a transition")
    lifecycle.add_argument("transition", choices=("get", *LIFECYCLE_TRANSITIONS))
    sub.add_parser("pause", parents=[common], help="hold the robot, stop publishing chunks")
    sub.add_parser("resume", parents=[common], help="resume control after pause (or an e-stop release)")
    estop = sub.add_parser("estop", parents=[common], help="engage the e-stop (latched), or --release it")
    estop.add_argument("--release", action="store_true", help="release into paused (then: resume)")
    instruction = sub.add_parser("instruction", parents=[common], help="set the task instruction")
    instruction.add_argument("text")
    ask = sub.add_parser("ask", parents=[common], help="ask the model a question about the scene (~/ask)")
    ask.add_argument("question")
    ask.add_argument("--answer-timeout", type=float, default=120.0,
                     help="seconds to wait for the answer once asked (default 120; the node's ask_timeout_s ends "
                          "the answer itself)")
    record = sub.add_parser("record", parents=[common], help="recorder episodes")
    record.add_argument("action", choices=tuple(RECORD_SERVICES))
    return parser


class _Ctl:
    """One short-lived rclpy node that talks to the target node and waits for its answers."""

    def __init__(self, node_name: str, timeout_s: float) -> None:
        import rclpy

        self.rclpy = rclpy
        self.target = node_name if node_name.startswith("/") else f"/{node_name}"
        self.timeout_s = timeout_s
        self.node = rclpy.create_node(f"wallx_ros_ctl_{os.getpid()}")

    def spin_until(self, done: Callable[[], bool], timeout_s: float | None = None) -> bool:
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.rclpy.spin_once(self.node, timeout_sec=min(0.1, left))
        return True

    def call(self, srv_type: Any, service: str, request: Any, answer_timeout_s: float | None = None) -> Any:
        """The response of ``<target>/<service>``; None (and a message) when it is not there or does not answer
        (within ``answer_timeout_s``, default the --timeout)."""
        name = f"{self.target}/{service}"
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=self.timeout_s):
                print(f"wallx-ros-ctl: no service {name} within {self.timeout_s:g} s: is {self.target} running, "
                      f"with the same ROS_DOMAIN_ID ({os.environ.get('ROS_DOMAIN_ID', '0')})?", file=sys.stderr)
                return None
            future = client.call_async(request)
            wait_s = self.timeout_s if answer_timeout_s is None else answer_timeout_s
            if not self.spin_until(future.done, wait_s):
                print(f"wallx-ros-ctl: {name} did not answer within {wait_s:g} s", file=sys.stderr)
                return None
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.node.destroy_node()


def _trigger(ctl: _Ctl, service: str) -> int:
    from std_srvs.srv import Trigger

    response = ctl.call(Trigger, service, Trigger.Request())
    if response is None:
        return 1
    print(f"{ctl.target}/{service}: {'ok' if response.success else 'refused'}: {response.message}")
    return 0 if response.success else 1


def _estop(ctl: _Ctl, release: bool) -> int:
    from std_srvs.srv import SetBool

    response = ctl.call(SetBool, "estop", SetBool.Request(data=not release))
    if response is None:
        return 1
    print(f"{ctl.target}/estop: {'ok' if response.success else 'refused'}: {response.message}")
    return 0 if response.success else 1


def _lifecycle(ctl: _Ctl, transition: str) -> int:
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    state = ctl.call(GetState, "get_state", GetState.Request())
    if state is None:
        return 1
    label = state.current_state.label
    if transition == "get":
        print(f"{ctl.target}: {label}")
        return 0
    ids = {"configure": Transition.TRANSITION_CONFIGURE, "activate": Transition.TRANSITION_ACTIVATE,
           "deactivate": Transition.TRANSITION_DEACTIVATE, "cleanup": Transition.TRANSITION_CLEANUP,
           "shutdown": {"unconfigured": Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
                        "inactive": Transition.TRANSITION_INACTIVE_SHUTDOWN,
                        "active": Transition.TRANSITION_ACTIVE_SHUTDOWN}.get(label)}
    if ids[transition] is None:
        print(f"wallx-ros-ctl: {ctl.target} is {label}: no shutdown transition from there", file=sys.stderr)
        return 1
    request = ChangeState.Request()
    request.transition = Transition(id=ids[transition])
    response = ctl.call(ChangeState, "change_state", request)
    if response is None:
        return 1
    after = ctl.call(GetState, "get_state", GetState.Request())
    now = after.current_state.label if after is not None else "?"
    if not response.success:
        print(f"wallx-ros-ctl: {ctl.target}: {transition} from {label} failed (now {now}); the node's log says why",
              file=sys.stderr)
        return 1
    print(f"{ctl.target}: {label} -> {now}")
    return 0


def _instruction(ctl: _Ctl, text: str) -> int:
    """The policy node validates its ``instruction`` parameter and answers with the reason of a refusal; the
    recorder's parameter is read-only, so it gets the text on ``~/instruction`` (delivery acknowledged)."""
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from std_msgs.msg import String

    request = SetParameters.Request()
    request.parameters = [Parameter(name="instruction", value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                                             string_value=text))]
    response = ctl.call(SetParameters, "set_parameters", request)
    if response is None:
        return 1
    result = response.results[0]
    if result.successful:
        print(f"{ctl.target}: instruction set")
        return 0
    if "read-only" not in result.reason and "read only" not in result.reason:
        print(f"wallx-ros-ctl: {ctl.target} refused the instruction: {result.reason}", file=sys.stderr)
        return 1
    publisher = ctl.node.create_publisher(String, f"{ctl.target}/instruction", 10)
    if not ctl.spin_until(lambda: publisher.get_subscription_count() > 0):
        print(f"wallx-ros-ctl: {ctl.target}/instruction has no subscriber", file=sys.stderr)
        return 1
    publisher.publish(String(data=text))
    if not publisher.wait_for_all_acked(ctl.rclpy.duration.Duration(seconds=ctl.timeout_s)):
        print(f"wallx-ros-ctl: {ctl.target} did not acknowledge the instruction", file=sys.stderr)
        return 1
    print(f"{ctl.target}: instruction sent on {ctl.target}/instruction (acknowledged)")
    return 0


def _ask(ctl: _Ctl, question: str, answer_timeout_s: float) -> int:
    """The policy node's ~/ask (diagnostic_msgs/AddDiagnostics: the question in ``load_namespace``)."""
    from diagnostic_msgs.srv import AddDiagnostics

    response = ctl.call(AddDiagnostics, "ask", AddDiagnostics.Request(load_namespace=question), answer_timeout_s)
    if response is None:
        return 1
    if not response.success:
        print(f"wallx-ros-ctl: {ctl.target} gave no answer: {response.message}", file=sys.stderr)
        return 1
    print(response.message)
    return 0


def _status(ctl: _Ctl, everyone: bool, window_s: float) -> int:
    from diagnostic_msgs.msg import DiagnosticArray

    from wallx_ros.analysis.diagnostics_summary import StatusEntry, summarise

    base = ctl.target.rsplit("/", 1)[-1]
    entries: list[StatusEntry] = []

    def on_diagnostics(msg: Any) -> None:
        for s in msg.status:
            if everyone or s.name.lstrip("/").rsplit("/", 1)[-1].startswith(f"{base}:"):
                entries.append(StatusEntry(s.name, int.from_bytes(s.level, "little") if isinstance(s.level, bytes)
                                           else int(s.level), s.message, tuple((kv.key, kv.value) for kv in s.values)))

    ctl.node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    if not ctl.spin_until(lambda: bool(entries)):
        who = "any node" if everyone else ctl.target
        print(f"wallx-ros-ctl: no /diagnostics from {who} within {ctl.timeout_s:g} s (is it running, with the same "
              f"ROS_DOMAIN_ID {os.environ.get('ROS_DOMAIN_ID', '0')}?)", file=sys.stderr)
        return 1
    if everyone:
        ctl.spin_until(lambda: False, window_s)
    else:  # the node publishes its statuses together: take the rest of that message
        ctl.spin_until(lambda: False, 0.3)
    print("\n".join(summarise(entries, keys_per_status=12, width=110)))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    node = args.node or DEFAULT_NODE.get(args.command, "/wallx_policy")
    from wallx_ros import ros_compat  # imports rclpy: after argument parsing, so --help is instant

    with ros_compat.init(args=None):
        ctl = _Ctl(node, args.timeout)
        try:
            if args.command == "status":
                return _status(ctl, args.all, args.window)
            if args.command == "lifecycle":
                return _lifecycle(ctl, args.transition)
            if args.command in ("pause", "resume"):
                return _trigger(ctl, args.command)
            if args.command == "estop":
                return _estop(ctl, args.release)
            if args.command == "instruction":
                return _instruction(ctl, args.text)
            if args.command == "ask":
                return _ask(ctl, args.question, args.answer_timeout)
            return _trigger(ctl, RECORD_SERVICES[args.action])
        except KeyboardInterrupt:
            return 130
        finally:
            ctl.close()


if __name__ == "__main__":
    raise SystemExit(main())
