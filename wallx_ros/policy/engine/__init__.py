"""The fast inference engine: WallX's own modules driven without stock's per-call overhead, bit-identical to
stock on CPU (eager attention). Used by ``policy.wallx_backend`` when ``engine: auto|fast_flow``; imports torch.

- ``flow_engine``: flow-matching ("diffusion") inference with the prefix KV cache reused across steps.
- ``flow_inputs``: the model inputs ``preprocess_inputs`` makes, made cheaply (prompt plans, rotary tables).
- ``vision_tower``: the Qwen2.5-VL vision tower without host synchronisation.
- ``pil_resize``: Pillow's BICUBIC resize, bit for bit, as torch ops on any device.
- ``fast_decode`` / ``static_decode`` / ``greedy_decode``: fast mode (FAST action tokens) decoding, CUDA-graph
  friendly, with a lean host loop for greedy decoding.
- ``rtc_guidance``: real-time chunking inside the flow sampler (fast flow engine and stock path).

LeRobot internals come from ``wallx_ros.lerobot.internals``; this package imports no LeRobot itself.
"""

from wallx_ros.policy.engine.fast_decode import (
    FAST_DECODE_VALIDATED_LINES,
    FastDecoder,
    fast_decode_line_reason,
    fast_decode_unsupported_reason,
    select_fast_decoder,
)
from wallx_ros.policy.engine.flow_engine import (
    ATTENTION_KINDS,
    FlowEngine,
    select_flow_engine,
)
from wallx_ros.policy.engine.flow_inputs import (
    FlowInputBuilder,
    FlowInputs,
    PromptPlan,
    mrope_tables,
)
from wallx_ros.policy.engine.pil_resize import (
    PilBicubicResizer,
    bicubic_taps,
)
from wallx_ros.policy.engine.rtc_guidance import (
    FlowGuide,
    build_guide,
    guided_euler,
    guided_velocity,
)
from wallx_ros.policy.engine.static_decode import (
    Attend,
    StaticDecodeStep,
)
from wallx_ros.policy.engine.vision_tower import (
    BlockLayout,
    VisionGeometry,
    VisionTowerRunner,
)

__all__ = [
    "ATTENTION_KINDS",
    "FAST_DECODE_VALIDATED_LINES",
    "Attend",
    "BlockLayout",
    "FastDecoder",
    "FlowEngine",
    "FlowGuide",
    "FlowInputBuilder",
    "FlowInputs",
    "PilBicubicResizer",
    "PromptPlan",
    "StaticDecodeStep",
    "VisionGeometry",
    "VisionTowerRunner",
    "bicubic_taps",
    "build_guide",
    "fast_decode_line_reason",
    "fast_decode_unsupported_reason",
    "guided_euler",
    "guided_velocity",
    "mrope_tables",
    "select_fast_decoder",
    "select_flow_engine",
]
