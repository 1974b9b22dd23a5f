"""Convert a LeRobot ``wall_x`` policy folder between the LeRobot 0.4 and 0.6 file layouts.

A policy saved by one LeRobot line does not load on the other as is; the weights are the same, the files
around them differ (verified with LeRobot 0.4.4/transformers 4.49 and 0.6.1/transformers 5.5):

0.4 -> 0.6
  * the backbone folder needs a ``model.safetensors`` (0.6 raises without one; an empty file is enough when
    the policy's own ``model.safetensors`` holds every weight, as LeRobot's ``save_pretrained`` writes it);
  * a backbone ``config.json`` saved by 0.4 has ``layer_types: ["dense", ...]`` (MoE meaning), which 0.6
    reads as attention types (``KeyError: 'dense'`` at the first forward): dropped;
  * ``attn_implementation`` other than ``eager`` is refused by 0.6: set to ``eager``.
0.6 -> 0.4
  * policy ``config.json`` fields 0.4's WallXConfig does not know (``pretrained_revision``,
    ``vision_attn_implementation``) make draccus fail: dropped;
  * the backbone ``config.json`` is in transformers 5's nested layout (``text_config``): flattened, with
    ``rope_parameters`` -> ``rope_theta`` + ``rope_scaling`` and ``dtype`` -> ``torch_dtype``;
  * transformers 5 saves the processor as ``processor_config.json`` (image + video processor nested); 4.49
    wants ``preprocessor_config.json`` (the image processor) and fails on the nested file: rewritten.

Only the files of the policy folder and of a backbone inside it (``wallx_backbone/``) are converted; an
external backbone folder (``pretrained_name_or_path``/``backbone_dir``, e.g. a local copy of
x-square-robot/wall-oss-flow in its legacy flat layout) is used as it is by both lines. The source folder is
never modified: the result is assembled in a temporary folder next to the destination and renamed into place.
Pure standard library (plus ``safetensors`` for the empty weights file): runs in either venv.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wallx_ros.policy.errors import CheckpointConversionError

__all__ = [
    "LINES",
    "CheckpointConversionReport",
    "CheckpointLayout",
    "convert_checkpoint",
    "detect_layout",
]

LINES = ("0.4", "0.6")
BACKBONE_SUBDIR = "wallx_backbone"
_WEIGHTS = "model.safetensors"

# Fields of LeRobot's WallXConfig as saved in a policy config.json (``type`` + the dataclass fields).
_POLICY_FIELDS_04 = frozenset({
    "type", "action_tokenizer_path", "attn_implementation", "chunk_size", "device", "input_features", "license",
    "max_action_dim", "max_state_dim", "n_action_steps", "n_obs_steps", "normalization_mapping", "optimizer_betas",
    "optimizer_eps", "optimizer_grad_clip_norm", "optimizer_lr", "optimizer_weight_decay", "output_features",
    "prediction_mode", "pretrained_name_or_path", "pretrained_path", "private", "push_to_hub", "repo_id",
    "scheduler_decay_lr", "scheduler_decay_steps", "scheduler_warmup_steps", "tags", "use_amp", "use_peft",
})
_POLICY_ONLY_06 = frozenset({"pretrained_revision", "vision_attn_implementation"})
_POLICY_FIELDS_06 = _POLICY_FIELDS_04 | _POLICY_ONLY_06
_ATTENTION_LAYER_TYPES = frozenset({"full_attention", "sliding_attention"})


@dataclass(frozen=True)
class CheckpointLayout:
    """What ``detect_layout`` found: which LeRobot lines can load a policy folder as it is, and why not.

    ``blockers[line]`` lists what keeps ``line`` from loading it (empty: it loads). A folder that neither
    line can load is an unknown layout and never gets this far.
    """

    policy_dir: Path
    backbone_dir: Path | None  # the backbone folder inside the policy folder, if any
    blockers: dict[str, tuple[str, ...]]

    @property
    def loads_on(self) -> tuple[str, ...]:
        return tuple(line for line in LINES if not self.blockers[line])

    @property
    def line(self) -> str:
        """``"0.4"``, ``"0.6"``, or ``"0.4+0.6"`` when both lines load it unchanged."""
        return "+".join(self.loads_on)


@dataclass(frozen=True)
class CheckpointConversionReport:
    """The result of ``convert_checkpoint``: where it went and every edit made."""

    source: Path
    destination: Path
    source_line: str
    target_line: str
    edits: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        head = f"{self.source} (LeRobot {self.source_line}) -> {self.destination} (LeRobot {self.target_line})"
        if not self.edits:
            return head + ": already in the target layout, copied unchanged"
        return head + "\n" + "\n".join(f"  - {e}" for e in self.edits)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CheckpointConversionError(f"{path} not found") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointConversionError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise CheckpointConversionError(f"{path} does not hold a JSON object")
    return data


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _backbone_blockers(backbone: Path, blockers: dict[str, list[str]]) -> None:
    cfg = _read_json(backbone / "config.json")
    if cfg.get("model_type") != "qwen2_5_vl":
        raise CheckpointConversionError(
            f"{backbone / 'config.json'} has model_type {cfg.get('model_type')!r}, not 'qwen2_5_vl': this is not a "
            "WALL-OSS (Qwen2.5-VL + MoE) backbone folder, and wallx-ros-convert-checkpoint knows no other layout")
    if isinstance(cfg.get("text_config"), dict):
        blockers["0.4"].append("backbone config.json nests text_config (transformers 5 layout)")
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and any(t not in _ATTENTION_LAYER_TYPES for t in layer_types):
        blockers["0.6"].append(f"backbone config.json has layer_types {sorted(set(layer_types))} (LeRobot 0.4's MoE "
                               "meaning; 0.6 reads attention types)")
    proc = backbone / "processor_config.json"
    if proc.is_file() and isinstance(_read_json(proc).get("image_processor"), dict):
        blockers["0.4"].append("backbone processor_config.json nests the image processor (transformers 5)")
    if not (backbone / "preprocessor_config.json").is_file() and not proc.is_file():
        raise CheckpointConversionError(
            f"backbone folder {backbone} has neither preprocessor_config.json nor processor_config.json: not a "
            "Qwen2.5-VL processor that either LeRobot line can load (unknown layout)")
    if not (backbone / _WEIGHTS).is_file():
        blockers["0.6"].append(f"backbone has no {_WEIGHTS} (0.6 requires one)")


def detect_layout(policy_dir: str | Path) -> CheckpointLayout:
    """Which LeRobot lines can load ``policy_dir``; CheckpointConversionError for anything not a known layout."""
    policy = Path(policy_dir).expanduser()
    if not policy.is_dir():
        raise CheckpointConversionError(f"{policy} is not a folder")
    cfg_path = policy / "config.json"
    cfg = _read_json(cfg_path)
    if cfg.get("type") != "wall_x":
        kind = cfg.get("type") or cfg.get("model_type")
        raise CheckpointConversionError(
            f"{cfg_path} describes a {kind!r}, not a LeRobot 'wall_x' policy: wallx-ros-convert-checkpoint converts "
            "LeRobot wall_x policy folders (config.json, model.safetensors, policy_*processor.json) only")
    if not (policy / _WEIGHTS).is_file():
        raise CheckpointConversionError(f"{policy / _WEIGHTS} not found: not a complete LeRobot policy folder")
    unknown = sorted(set(cfg) - _POLICY_FIELDS_06)
    if unknown:
        raise CheckpointConversionError(
            f"{cfg_path} has fields {unknown} that neither LeRobot 0.4.4 nor 0.6.1 writes: unknown layout "
            "(a newer LeRobot?). Refusing to convert rather than drop settings silently.")
    blockers: dict[str, list[str]] = {line: [] for line in LINES}
    only_06 = sorted(set(cfg) & _POLICY_ONLY_06)
    if only_06:
        blockers["0.4"].append(f"policy config.json has LeRobot 0.6 fields {only_06}")
    if cfg.get("attn_implementation", "eager") != "eager":
        blockers["0.6"].append(f"policy attn_implementation is {cfg['attn_implementation']!r} (0.6 accepts eager only)")
    backbone: Path | None = policy / BACKBONE_SUBDIR
    assert backbone is not None
    if backbone.is_dir():
        _backbone_blockers(backbone, blockers)
    else:
        backbone = None
    if all(blockers[line] for line in LINES):
        found = "; ".join(f"{line}: {', '.join(b)}" for line, b in blockers.items())
        raise CheckpointConversionError(
            f"{policy} mixes LeRobot 0.4 and 0.6 files, so neither line can load it ({found}): unknown (half-"
            "converted?) layout, refusing to guess. Start from an unmodified lerobot-train / save_pretrained output.")
    return CheckpointLayout(policy, backbone, {line: tuple(b) for line, b in blockers.items()})


# -- edits ------------------------------------------------------------------------------------------------
def _to_06(dst: Path, layout: CheckpointLayout) -> list[str]:
    edits = []
    cfg = _read_json(dst / "config.json")
    if cfg.get("attn_implementation", "eager") != "eager":
        edits.append(f"policy attn_implementation {cfg['attn_implementation']!r} -> 'eager' (the only one 0.6 "
                     "accepts; it is also the one that keeps WallX's bidirectional action-token attention)")
        cfg["attn_implementation"] = "eager"
        _write_json(dst / "config.json", cfg)
    if layout.backbone_dir is not None:
        backbone = dst / BACKBONE_SUBDIR
        if not (backbone / _WEIGHTS).is_file():
            from safetensors.numpy import save_file

            save_file({}, str(backbone / _WEIGHTS), metadata={"format": "pt"})
            edits.append(f"wrote an empty {BACKBONE_SUBDIR}/{_WEIGHTS} (0.6 requires the file; every weight is in "
                         f"the policy's {_WEIGHTS})")
        bcfg = _read_json(backbone / "config.json")
        layer_types = bcfg.get("layer_types")
        if isinstance(layer_types, list) and any(t not in _ATTENTION_LAYER_TYPES for t in layer_types):
            del bcfg["layer_types"]
            _write_json(backbone / "config.json", bcfg)
            edits.append(f"dropped backbone layer_types {sorted(set(layer_types))} (0.6 reads them as attention "
                         "types)")
    return edits


def _flatten_backbone_config(cfg: dict[str, Any]) -> dict[str, Any]:
    text = dict(cfg.pop("text_config"))
    rope = dict(text.pop("rope_parameters", None) or cfg.pop("rope_parameters", None) or {})
    flat = dict(cfg)
    for key, value in text.items():
        if key not in ("model_type", "layer_types", "dtype"):
            flat.setdefault(key, value)
    if rope:
        flat["rope_theta"] = rope.pop("rope_theta", flat.get("rope_theta", 1000000.0))
        rope.setdefault("type", rope.get("rope_type", "mrope"))
        flat["rope_scaling"] = rope
    if "dtype" in flat:
        flat["torch_dtype"] = flat.pop("dtype")
    flat.pop("layer_types", None)
    return flat


def _to_04(dst: Path, layout: CheckpointLayout) -> list[str]:
    edits = []
    cfg = _read_json(dst / "config.json")
    dropped = sorted(set(cfg) & _POLICY_ONLY_06)
    for key in dropped:
        value = cfg.pop(key)
        edits.append(f"dropped policy field {key}={value!r} (unknown to LeRobot 0.4)")
    if dropped:
        _write_json(dst / "config.json", cfg)
    if layout.backbone_dir is None:
        return edits
    backbone = dst / BACKBONE_SUBDIR
    bcfg = _read_json(backbone / "config.json")
    if isinstance(bcfg.get("text_config"), dict):
        _write_json(backbone / "config.json", _flatten_backbone_config(bcfg))
        edits.append("flattened backbone config.json (text_config -> top level, rope_parameters -> rope_theta + "
                     "rope_scaling, dtype -> torch_dtype)")
    proc_path = backbone / "processor_config.json"
    if proc_path.is_file():
        proc = _read_json(proc_path)
        image = proc.get("image_processor")
        if isinstance(image, dict):
            image = dict(image)
            size = image.get("size") or {}
            image.setdefault("min_pixels", size.get("shortest_edge"))
            image.setdefault("max_pixels", size.get("longest_edge"))
            image["processor_class"] = proc.get("processor_class", "Qwen2_5_VLProcessor")
            _write_json(backbone / "preprocessor_config.json", image)
            proc_path.unlink()
            edits.append("backbone processor_config.json (nested, transformers 5) -> preprocessor_config.json "
                         "(image processor, transformers 4)")
    return edits


def _check_destination(src: Path, dst: Path) -> None:
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise CheckpointConversionError(f"destination {dst} exists and is not an empty folder: choose a new path")
    if dst == src or src in dst.parents:
        raise CheckpointConversionError(f"destination {dst} lies inside the source {src}: choose a path outside it")


def convert_checkpoint(src: str | Path, dst: str | Path, to: str) -> CheckpointConversionReport:
    """Write a copy of policy folder ``src`` at ``dst`` in LeRobot ``to``'s layout (``"0.4"`` or ``"0.6"``).

    ``src`` is only read. Raises CheckpointConversionError (with what to do) for unknown layouts, an
    existing non-empty ``dst`` or an unknown target line.
    """
    if to not in LINES:
        raise CheckpointConversionError(f"--to must be one of {LINES}, got {to!r}")
    source = Path(src).expanduser().resolve()
    dest = Path(dst).expanduser().resolve()
    layout = detect_layout(source)
    _check_destination(source, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        staged = work / "checkpoint"
        shutil.copytree(source, staged, symlinks=False)
        edits: list[str] = []
        if layout.blockers[to]:
            edits = _to_06(staged, layout) if to == "0.6" else _to_04(staged, layout)
        if layout.backbone_dir is not None:
            cfg = _read_json(staged / "config.json")
            new_path = str(dest / BACKBONE_SUBDIR)
            if cfg.get("pretrained_name_or_path") != new_path:
                cfg["pretrained_name_or_path"] = new_path
                _write_json(staged / "config.json", cfg)
                edits.append(f"pretrained_name_or_path -> {new_path} (the copied backbone)")
        result = detect_layout(staged)
        if result.blockers[to]:  # every known edit applied: anything left means a layout we do not know
            raise CheckpointConversionError(
                f"after conversion {source} still cannot load on LeRobot {to}: {'; '.join(result.blockers[to])}")
        if dest.exists():
            dest.rmdir()
        os.replace(staged, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CheckpointConversionReport(source, dest, layout.line, to, tuple(edits))
