"""TEST-ONLY policy node whose model answers in varied words. Never installed, never a default.

    PYTHONPATH=<repo>:<repo>/test WALLX_TEST_REPETITION_PENALTY=10 python -m wordy_policy_node --ros-args ...

The production node (``wallx_ros.nodes.policy_node.main``) with one difference: after the real backend is
loaded, the model's ``generation_config.repetition_penalty`` is set from ``WALLX_TEST_REPETITION_PENALTY`` (a
generation setting transformers' ``generate`` honours). The tiny checkpoint's random weights otherwise answer
every question with the same newline token, and an empty answer cannot show which observation it came from.
``test_text_generation.py`` does the same in-process.
"""

from __future__ import annotations

import os
import sys
from typing import Any

PENALTY_ENV = "WALLX_TEST_REPETITION_PENALTY"


def main() -> int:
    penalty = os.environ.get(PENALTY_ENV)
    if not penalty:
        sys.stderr.write(f"{PENALTY_ENV} is not set: this test-only node refuses to start\n")
        return 2
    from wallx_ros.nodes import policy_node

    real_load = policy_node.load_backend

    def load(config: Any) -> Any:
        backend = real_load(config)
        backend._policy.model.generation_config.repetition_penalty = float(penalty)
        return backend

    policy_node.load_backend = load
    return policy_node.main()


if __name__ == "__main__":
    raise SystemExit(main())
