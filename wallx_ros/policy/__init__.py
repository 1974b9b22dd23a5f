"""Model backends behind one small interface (load, predict_chunk, warmup) and the inference worker.

Only ``wallx_ros.lerobot`` imports LeRobot; torch and LeRobot are imported lazily so that nodes and the
core stay importable (and testable) without them.
"""

from wallx_ros.policy.backend import PolicyBackend, load_backend
from wallx_ros.policy.config import BackendConfig

__all__ = ["BackendConfig", "PolicyBackend", "load_backend"]
