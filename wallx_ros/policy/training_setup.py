"""What ``wallx-ros-train`` changes on the policy LeRobot builds, before the optimizer sees it (CPU training).

LeRobot's ``WallXPolicy`` always converts the model to bfloat16 (norms and the action head in float32) and
trains every parameter. On a CPU without native bfloat16 arithmetic (AVX2 only, e.g. AMD Zen 3: the
project's 2-core machine) every bf16 op is emulated: one step of the tiny WallX at batch 2 takes ~7 s in
bf16 and ~0.6 s in float32 (bench/results/train_speed_*.md). Two explicit, opt-in settings, both off by
default so a plain ``wallx-ros-train`` is exactly ``lerobot-train``:

* ``precision="float32"``: cast every parameter to float32 after LeRobot built the policy. The saved
  checkpoint holds float32 weights; ``WallXPolicy.from_pretrained`` loads them into its usual bf16 model,
  so the policy node runs what it always runs (the weights rounded to bf16).
* ``freeze``: parameter groups that keep their initial values (no gradient, not updated):
  ``vision_patch_embed`` (the Conv3d patch embedding: its bf16 ``slow_conv3d`` backward was half a bf16
  step) or ``vision`` (the whole vision tower, merger included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wallx_ros.policy.errors import BackendConfigError

__all__ = ["FREEZE_GROUPS", "PRECISIONS", "TrainingSetup"]

PRECISIONS = ("model", "float32")  # model: LeRobot's own dtypes (bf16 with float32 norms)
# group name -> attribute path below the policy (WallXPolicy.model is the Qwen2.5-VL MoE model)
FREEZE_GROUPS: dict[str, str] = {
    "vision_patch_embed": "model.visual.patch_embed",
    "vision": "model.visual",
}


@dataclass(frozen=True)
class TrainingSetup:
    """The wallx_ros training settings; ``apply`` changes a freshly built policy in place."""

    precision: str = "model"
    freeze: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise BackendConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        unknown = [g for g in self.freeze if g not in FREEZE_GROUPS]
        if unknown:
            raise BackendConfigError(f"unknown freeze group(s) {unknown}: choose from {sorted(FREEZE_GROUPS)}")

    @property
    def is_default(self) -> bool:
        return self.precision == "model" and not self.freeze

    def apply(self, policy: Any) -> dict[str, int]:
        """Cast and freeze; returns parameter counts (trainable, frozen) for the log."""
        import torch

        if self.precision == "float32":
            policy.to(torch.float32)
        for group in self.freeze:
            module = policy
            for name in FREEZE_GROUPS[group].split("."):
                module = getattr(module, name, None)
                if module is None:
                    raise BackendConfigError(f"freeze {group!r}: the policy has no {FREEZE_GROUPS[group]}")
            for param in module.parameters():
                param.requires_grad_(False)
        params = list(policy.parameters())
        trainable = sum(p.numel() for p in params if p.requires_grad)
        return {"trainable": trainable, "frozen": sum(p.numel() for p in params) - trainable}

    def as_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "freeze": list(self.freeze)}
