"""wallx_ros.nodes.executors.MultiThreadedExecutor over real rcl entities: each ready task goes to the thread
pool once (rclpy's own executor re-queues tasks not yet started, busy-looping under GIL contention), callbacks
of a reentrant group still run in parallel, and a callback's exception still reaches the spinning thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import private_domain_id, wait_until
from std_msgs.msg import Int32

from wallx_ros.nodes.executors import MultiThreadedExecutor


@pytest.fixture()
def context() -> Iterator[Any]:
    """A private rcl context on its own domain: the entities of this module meet nobody else."""
    ctx = rclpy.Context()
    rclpy.init(args=[], context=ctx, domain_id=private_domain_id())
    yield ctx
    rclpy.try_shutdown(context=ctx)
    ctx.destroy()


def _spin_in_thread(executor: MultiThreadedExecutor) -> threading.Thread:
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    return thread


def test_each_message_is_dispatched_once_under_gil_contention(context: Any) -> None:
    node = rclpy.create_node("executor_under_test", context=context)
    peer = rclpy.create_node("executor_peer", context=context)
    received: list[int] = []
    reliable = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Int32, "numbers", lambda m: received.append(m.data), reliable,
                             callback_group=ReentrantCallbackGroup())
    pub = peer.create_publisher(Int32, "numbers", reliable)
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    spinner = _spin_in_thread(executor)
    stop = threading.Event()

    def hog_the_gil() -> None:  # pure-Python work: pool threads must fight for the GIL to start a task
        x = 0
        while not stop.is_set():
            x += 1

    hogs = [threading.Thread(target=hog_the_gil, daemon=True) for _ in range(2)]
    for hog in hogs:
        hog.start()
    try:
        assert wait_until(lambda: pub.get_subscription_count() >= 1, 30)
        for i in range(300):
            pub.publish(Int32(data=i))
            if i % 50 == 0:
                time.sleep(0.01)
        assert wait_until(lambda: len(received) == 300, 60), f"received {len(received)} of 300"
    finally:
        stop.set()
        executor.shutdown(timeout_sec=5.0)
        spinner.join(10)  # before the context goes: a spin loop still running would use a destroyed context
        node.destroy_node()
        peer.destroy_node()
    assert sorted(received) == list(range(300))
    # one pool task per taken message (rclpy's executor hands a waiting task out again on every loop)
    assert executor.dispatched == 300, f"{executor.dispatched} tasks dispatched for 300 messages"


def test_reentrant_callbacks_still_run_in_parallel(context: Any) -> None:
    node = rclpy.create_node("executor_parallel", context=context)
    barrier = threading.Barrier(2, timeout=20)
    met: list[bool] = []
    group = ReentrantCallbackGroup()
    timers: list[Any] = []

    def meet() -> None:  # returns only when the other timer's callback is running at the same time
        try:
            met.append(barrier.wait() >= 0)
        except threading.BrokenBarrierError:
            met.append(False)

    timers.append(node.create_timer(0.05, meet, callback_group=group))
    timers.append(node.create_timer(0.05, meet, callback_group=group))
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    spinner = _spin_in_thread(executor)
    try:
        assert wait_until(lambda: len(met) >= 2, 30), "two reentrant callbacks never ran at the same time"
        assert all(met[:2])
    finally:
        for timer in timers:
            timer.cancel()
        barrier.abort()
        executor.shutdown(timeout_sec=5.0)
        spinner.join(10)
        node.destroy_node()


def test_a_callback_exception_reaches_the_spinning_thread(context: Any) -> None:
    node = rclpy.create_node("executor_raises", context=context)

    def boom() -> None:
        raise RuntimeError("boom from a callback")

    node.create_timer(0.01, boom)
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    try:
        with pytest.raises(RuntimeError, match="boom from a callback"):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()


def test_spin_node_exit_codes_and_cleanup() -> None:
    """The main() the nodes share: a listed start-up error gives exit code 1; a shutdown ends spinning with
    exit code 0 after ``on_exit`` ran on the node."""
    from rclpy.node import Node

    from wallx_ros.nodes.executors import spin_node

    def refuse() -> Node:
        raise ValueError("bad parameter")

    # (the second call below can only init rclpy again because this one shut its context down)
    assert spin_node(refuse, args=[], logger_name="executor_test", startup_errors=(ValueError,)) == 1

    built: list[Node] = []
    exited: list[Node] = []

    def build() -> Node:
        built.append(rclpy.create_node("spin_node_under_test"))
        built[0].create_timer(0.05, lambda: rclpy.try_shutdown())  # what SIGINT does from rclpy's signal handler
        return built[0]

    assert spin_node(build, args=[], logger_name="executor_test", on_exit=exited.append) == 0
    assert len(exited) == 1 and exited[0] is built[0]


@pytest.mark.parametrize("executor_class", [MultiThreadedExecutor, rclpy.executors.MultiThreadedExecutor])
def test_a_timer_cancelled_after_the_wait_is_skipped(context: Any, executor_class: type) -> None:
    """The race of a lifecycle transition (one pool thread cancels the node's timers) with a due timer's take (on
    another): the wait set has seen the timer ready and its task exists, then the timer is cancelled, then the task
    runs. Jazzy's rclpy raises "timer is canceled" out of the task (the executor re-raises it in the spinning
    thread: the node ends; seen in CI as a spin thread's exception); Kilted's skips it (TimerCancelledError); this
    package's executor skips it on both and releases the timer's callback group."""
    import rclpy.executors

    node = rclpy.create_node("executor_cancel_race", context=context)
    calls: list[int] = []
    timer = node.create_timer(0.001, lambda: calls.append(1))
    executor = executor_class(num_threads=2, context=context)
    executor.add_node(node)
    try:
        task, entity, _ = executor.wait_for_ready_callbacks(timeout_sec=30)
        assert entity is timer
        timer.cancel()
        upstream_skips = hasattr(rclpy._rclpy_pybind11, "TimerCancelledError")  # Kilted on; not Jazzy
        if executor_class is MultiThreadedExecutor or upstream_skips:
            task()
            assert task.done() and task.exception() is None and not calls
            assert timer.callback_group.can_execute(timer), "the timer's callback group stays taken"
        else:  # what the override is for
            with pytest.raises(RuntimeError, match="timer is canceled"):
                task()
                task.result()
    finally:
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
