"""The policy node's joint limits: where they come from at configure, and whether activation may proceed.

Resolution (parameters, else the URDF, else the checkpoint's action statistics) is ``core.limit_sources``;
this module gathers the three sources from the node's settings and states the activation rule: motion
must be bounded (every action joint with finite position limits and max_velocity) unless
``allow_unlimited_motion`` says otherwise, never on a robot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from wallx_ros.core.action_mapping import ActionMapping
from wallx_ros.core.limit_sources import ResolvedLimits, resolve_limits, stats_limits
from wallx_ros.core.safety import JointLimits
from wallx_ros.core.urdf import UrdfModel
from wallx_ros.nodes.policy_parameters import PolicyNodeConfig
from wallx_ros.policy.action_stats import load_action_stats
from wallx_ros.policy.errors import CheckpointError

__all__ = ["ActivationVerdict", "activation_verdict", "resolve_policy_limits"]


def resolve_policy_limits(cfg: PolicyNodeConfig, mapping: ActionMapping, urdf: UrdfModel | None, fps: float,
                          warn: Callable[[str], None]) -> ResolvedLimits:
    """Joint limits from parameters, else the URDF, else the checkpoint's action statistics (core.limit_sources).
    ``warn`` hears why the checkpoint gave none (the other sources may still bound every joint)."""
    names = mapping.action_names
    from_urdf = None
    if urdf is not None:
        from_urdf = JointLimits.from_mapping(names, urdf.limits(), urdf.acceleration_limits())
    from_stats = None
    try:
        action_stats = load_action_stats(cfg.backend.checkpoint_dir)
    except CheckpointError as err:
        warn(f"no joint limits from the checkpoint's action statistics: {err}")
        action_stats = None
    if action_stats is not None:
        from_stats = stats_limits(mapping, action_stats.minimum, action_stats.maximum, action_stats.chunk_size / fps,
                                  cfg.stats_limit_margin)
    given = {"lower": cfg.position_lower, "upper": cfg.position_upper, "max_velocity": cfg.max_velocity,
             "max_acceleration": cfg.max_acceleration}
    return resolve_limits(names, given, from_urdf, from_stats)


@dataclass(frozen=True)
class ActivationVerdict:
    """``refusal``: why activation must fail ('' = it may go on); ``warning``: what to log when it goes on."""

    refusal: str = ""
    warning: str = ""


def activation_verdict(limits: ResolvedLimits, allow_unlimited_motion: bool) -> ActivationVerdict:
    """May the node activate with these limits? Unbounded motion is refused unless explicitly allowed."""
    missing = limits.missing()
    if missing and not allow_unlimited_motion:
        return ActivationVerdict(refusal=(
            f"activation refused: motion would be unbounded ({missing}); give "
            "position_lower/position_upper/max_velocity, a URDF (urdf_path or "
            "robot_description), or a checkpoint with action statistics "
            "(or allow_unlimited_motion:=true, never on a robot)"))
    if allow_unlimited_motion:
        return ActivationVerdict(warning="allow_unlimited_motion is true: " + (
            f"motion is NOT bounded ({missing})" if missing else "(every joint is bounded anyway)")
            + "; never run a robot like this")
    return ActivationVerdict()
