"""TEST-ONLY policy node whose REAL backend can be made to fail on demand. Never installed, never a default.

    PYTHONPATH=<repo>:<repo>/test WALLX_TEST_FAULT_FILE=/tmp/faults.json \\
        python -m fault_policy_node --ros-args --params-file ...

It is the production node (``wallx_ros.nodes.policy_node.main``) with one difference: the backend that
``load_backend`` returns (the real LeRobot WallX model) is wrapped in :class:`FaultInjectingBackend`. The
wrapper re-reads the JSON file named by ``WALLX_TEST_FAULT_FILE`` before every prediction, so a test can
change the fault while the node runs::

    {"fault": "none"}                 real predictions
    {"fault": "raise"}                LeRobot's predict_action_chunk raises RuntimeError (a CUDA/kernel error)
    {"fault": "oom"}                  LeRobot's predict_action_chunk raises torch.cuda.OutOfMemoryError
    {"fault": "raise_outside"}        the backend itself raises KeyError (not the documented InferenceError)
    {"fault": "host_oom"}             the backend raises MemoryError
    {"fault": "slow", "seconds": 2}   sleep, then a real prediction (inference longer than a chunk)
    {"fault": "nan"}                  a real prediction with NaN in one joint
    {"fault": "huge"}                 a real prediction scaled by 1e6 (far outside every limit)
    {"fault": "adversarial"}          a real prediction with every row thrown +-amplitude (default 5) the other
                                      way than the last, and each chunk starting on the side the last one ended
                                      away from: the worst for velocity and acceleration limits, in and across chunks

Why a test-side wrapper and not a parameter of the node: fault injection must be impossible to switch on
for a robot by a params file, a launch argument or a remote ``ros2 param set``. This module lives in test/,
is not part of the package (setup.py installs ``wallx_ros`` only), and the production module stays free
of any fault hook. Model faults are injected INSIDE the real LeRobot call where possible ("raise", "oom"),
so the backend's own error translation is what gets tested.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from wallx_ros.core.types import ActionChunk, Observation

FAULT_FILE_ENV = "WALLX_TEST_FAULT_FILE"
FAULTS = ("none", "raise", "oom", "raise_outside", "host_oom", "slow", "nan", "huge", "adversarial")


class FaultInjectingBackend:
    """Delegates everything to the real backend; ``predict_chunk`` applies the fault the file names."""

    def __init__(self, backend: Any, fault_file: Path) -> None:
        self._backend = backend
        self._file = fault_file
        self._mtime = -1.0
        self._fault: dict[str, Any] = {"fault": "none"}
        self.injected = 0

    def __getattr__(self, name: str) -> Any:  # action_names, cameras, fps, image_shapes, device, warmup, ...
        return getattr(self._backend, name)

    def _current(self) -> dict[str, Any]:
        try:
            mtime = self._file.stat().st_mtime_ns
        except FileNotFoundError:
            return {"fault": "none"}
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self._fault = json.loads(self._file.read_text() or "{}")
            except json.JSONDecodeError:  # caught mid-write: keep the previous fault
                pass
        return self._fault

    def predict_chunk(self, observation: Observation, prefix: Any = None) -> ActionChunk:
        fault = self._current()
        kind = str(fault.get("fault", "none"))
        if kind == "none":
            return self._backend.predict_chunk(observation, prefix)
        self.injected += 1
        sys.stderr.write(f"[fault injection] {kind} ({self.injected})\n")
        if kind in ("raise", "oom"):
            return self._raise_inside(observation, kind)
        if kind == "raise_outside":
            raise KeyError("injected fault: a backend bug outside the model call")
        if kind == "host_oom":
            raise MemoryError("injected fault: host out of memory")
        if kind == "slow":
            time.sleep(float(fault.get("seconds", 2.0)))
            return self._backend.predict_chunk(observation, prefix)
        chunk = self._backend.predict_chunk(observation, prefix)
        actions = np.array(chunk.actions, copy=True)
        if kind == "nan":
            actions[:, 0] = np.nan
        elif kind == "huge":
            actions *= 1e6
        elif kind == "adversarial":
            amplitude = float(fault.get("amplitude", 5.0))
            self._flip = -getattr(self, "_flip", 1.0)  # each chunk starts on the other side
            signs = self._flip * (-1.0) ** np.arange(actions.shape[0])[:, None]
            actions = actions + amplitude * signs
        else:
            raise ValueError(f"unknown fault {kind!r}: one of {FAULTS}")
        return ActionChunk(actions, chunk.names, chunk.stamp_ns, chunk.dt_s, dict(chunk.timings_ms))

    def _raise_inside(self, observation: Observation, kind: str) -> ActionChunk:
        """Make LeRobot's own ``predict_action_chunk`` raise, so the backend's error handling runs."""
        import torch

        policy = self._backend._policy

        def failing(*args: Any, **kwargs: Any) -> Any:
            if kind == "oom":
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected fault)")
            raise RuntimeError("CUDA error: an illegal memory access was encountered (injected fault)")

        policy.predict_action_chunk = failing
        try:
            return self._backend.predict_chunk(observation)
        finally:
            del policy.predict_action_chunk  # back to the class's method


def main() -> int:
    path = os.environ.get(FAULT_FILE_ENV)
    if not path:
        sys.stderr.write(f"{FAULT_FILE_ENV} is not set: this test-only node refuses to start\n")
        return 2
    from wallx_ros.nodes import policy_node

    real_load = policy_node.load_backend
    policy_node.load_backend = lambda config: FaultInjectingBackend(real_load(config), Path(path))
    return policy_node.main()


if __name__ == "__main__":
    raise SystemExit(main())
