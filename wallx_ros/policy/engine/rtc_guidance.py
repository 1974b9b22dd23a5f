"""Real-time chunking inside WallX's flow sampler: each Euler step is pulled towards the running plan.

Which variant, and why. The paper (Black et al. 2025) guides with ``(Y - A1)^T diag(W) dA1/dA_t``, a
vector-Jacobian product through the whole denoiser at every step (LeRobot's pi0/SmolVLA RTC runs it with
autograd). Here the Jacobian ``dA1/dA_t = I + (1 - t) dv/dA_t`` is taken as the identity (the
*prefix-error* form): the guidance is ``W * (Y - A1)`` with ``A1 = y + (1 - t) v``, the chunk the step
predicts. Reasons:

* cost: the VJP runs a backward pass through every decoder layer at each of the 10 steps (about 2-3x the
  flow's forward compute; fast_flow's action-only steps are the bulk of a chunk), far over a 25 % budget,
  and it needs autograd inside a captured CUDA graph; the prefix-error form is 4 element-wise ops per step;
* it is exact enough: with the identity Jacobian one step shrinks the prefix error by ``1 - dt * gain * W``,
  so the frozen rows (W = 1) converge geometrically (tiny checkpoint: ~4e-4 in normalised units);
* WallX's action tokens attend to each other bidirectionally, so a corrected prefix reaches the other
  rows through the next step's forward pass, which is what the Jacobian would have done in one go.

Time convention: WallX integrates noise t=0 -> data t=1 with ``y += dt * v(t, y)``, the paper's direction.
The same ``guided_velocity`` serves the fast flow engine and the stock path (LeRobot's torchdiffeq Euler
loop replaced by ``guided_euler`` through ``wallx_ros.lerobot.wallx_model.stock_flow_integrator``): same ops,
same order, so both give bit-identical chunks on CPU with eager attention.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from wallx_ros.core.realtime_chunking import ActionPrefix, guidance_gains

__all__ = ["FlowGuide", "build_guide", "guided_euler", "guided_velocity"]


@dataclass(frozen=True)
class FlowGuide:
    """The running plan in the model's normalised action space: ``target`` and ``weights`` (1, chunk, max
    action dim) on the model's device, zero where there is no prefix (padded dims, unused action dims, rows
    past the running plan), and ``max_guidance`` (the gain cap)."""

    target: torch.Tensor
    weights: torch.Tensor
    max_guidance: float


def guided_velocity(velocity: torch.Tensor, state: torch.Tensor, t: torch.Tensor, gain: float,
                    guide: FlowGuide) -> torch.Tensor:
    """``v + gain * W * (Y - (y + (1 - t) v))`` for the Euler step at flow time ``t`` (0-dim tensor)."""
    predicted = state + (1 - t) * velocity
    return velocity + gain * (guide.weights * (guide.target - predicted))


def guided_euler(func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], y0: torch.Tensor,
                 times: torch.Tensor, guide: FlowGuide) -> torch.Tensor:
    """torchdiffeq's fixed-grid Euler (``odeint(func, y0, times, method="euler")``: ``y += (t1 - t0) * f(t0, y)``,
    the whole trajectory returned) with the guided velocity."""
    gains = guidance_gains(times.detach().cpu().tolist(), guide.max_guidance)
    states = [y0]
    y = y0
    for i, gain in enumerate(gains):
        t0, t1 = times[i], times[i + 1]
        velocity = guided_velocity(func(t0, y), y, t0, gain, guide)
        y = y + (t1 - t0) * velocity
        states.append(y)
    return torch.stack(states)


def build_guide(prefix: ActionPrefix, columns: np.ndarray, action_dim: int, horizon: int, max_action_dim: int,
                normalise: Callable[[torch.Tensor], torch.Tensor], device: torch.device | str,
                max_guidance: float) -> FlowGuide:
    """The guide for ``prefix`` (backend chunk units, ``columns`` = the action dims the robot uses).

    ``normalise`` is the post-processor's inverse (LeRobot's own normaliser with the checkpoint's stats, float32
    on the model's device, as the post-processor sees the model's output): its output is what the flow must
    produce for the post-processor to give back the prefix.
    """
    rows = min(prefix.actions.shape[0], horizon)
    if prefix.actions.shape[1] != len(columns):
        raise ValueError(f"prefix has {prefix.actions.shape[1]} columns, the robot uses {len(columns)} action dims")
    actions = torch.zeros((1, rows, action_dim), dtype=torch.float32, device=device)
    index = torch.as_tensor(np.asarray(columns, dtype=np.int64), device=device)
    actions[0, :, index] = torch.as_tensor(prefix.actions[:rows], dtype=torch.float32, device=device)
    normalised = normalise(actions)
    target = torch.zeros((1, horizon, max_action_dim), dtype=torch.float32, device=device)
    weights = torch.zeros_like(target)
    target[0, :rows, index] = normalised[0, :, index].to(torch.float32)
    row_weights = torch.as_tensor(prefix.weights[:rows], dtype=torch.float32, device=device)
    weights[0, :rows, index] = row_weights[:, None].expand(rows, len(columns))
    return FlowGuide(target, weights, float(max_guidance))
