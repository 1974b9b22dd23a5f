"""``wallx-ros-bag2dataset BAG... --root OUT``: rosbag2 recordings -> LeRobot v3 dataset.

The topic -> feature mapping comes from the command line (``--camera KEY=TOPIC``, ``--state TOPIC``,
``--action TOPIC``, ``--joints``, ``--fps``) or from a params file with the recorder's parameters
(``--params-file config/recorder.yaml``; ``config/bag2dataset.yaml`` documents the bag-only ones), flags
overriding the file. Each bag (mcap or sqlite3, compressed or not; a folder of bags works too) is converted
and appended to the dataset at ``--root``; running it again adds only what is not there yet.

Exit codes: 0 every bag converted and the dataset finalized; 1 an error (one line on stderr; the dataset keeps
the episodes saved so far and is marked incomplete: ``meta/WALLX_ROS_INCOMPLETE``); 3 with ``--strict``, the
dataset is complete but something was repaired (a gap split or held, messages skipped): see the summary or
``--report-json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from wallx_ros.core.errors import CoreError
from wallx_ros.core.frame_alignment import RULES
from wallx_ros.core.frame_gaps import GAP_POLICIES
from wallx_ros.dataset.bag_config import BagConversionConfig, load_params_file
from wallx_ros.dataset.bag_conversion import ConversionReport, convert_bags
from wallx_ros.dataset.bag_messages import ACTION_TYPES, IMAGE_TYPES, STATE_TYPES
from wallx_ros.dataset.bag_reader import RosBag, find_bags
from wallx_ros.dataset.conversion_ledger import INCOMPLETE_MARKER
from wallx_ros.dataset.errors import BagConfigError, DatasetError

__all__ = ["EXIT_STRICT", "build_parser", "main"]

log = logging.getLogger("wallx_ros.bag2dataset")
EXIT_STRICT = 3
_ACTION_TYPE_OF = {"sensor_msgs/msg/JointState": "JointState", "trajectory_msgs/msg/JointTrajectory": "JointTrajectory",
                   "std_msgs/msg/Float64MultiArray": "Float64MultiArray"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wallx-ros-bag2dataset",
        description="Convert rosbag2 recordings (mcap/sqlite3, no ROS install needed) into a LeRobot v3 dataset. "
                    "Map topics with flags, e.g. --camera face_view=/cam0/image_raw --state /joint_states "
                    "--action /teleop/command --fps 30 --instruction 'pick the cube', or with the recorder's params "
                    "file (flags override it).")
    p.add_argument("bags", nargs="+", help="rosbag2 folders, .mcap/.db3 files, or folders holding several bags")
    p.add_argument("--root", help="dataset folder (created, or appended to when it exists); default: the params "
                                   "file's root")
    p.add_argument("--params-file", help="ROS params YAML with the recorder's parameters (/**: ros__parameters:), "
                                         "e.g. config/bag2dataset.yaml or config/recorder.yaml")
    m = p.add_argument_group("topic -> feature mapping")
    m.add_argument("--camera", action="append", default=[], metavar="KEY=TOPIC",
                   help="camera KEY (observation.images.KEY) from image topic TOPIC (Image or CompressedImage); "
                        "repeat for each camera")
    m.add_argument("--no-cameras", action="store_true", help="a state-only dataset (no images; not for WALL-OSS)")
    m.add_argument("--state", metavar="TOPIC", help="sensor_msgs/JointState topic of observation.state "
                                                   "(default: joint_states)")
    m.add_argument("--joints", action="append", metavar="NAME[,NAME...]",
                   help="joints of observation.state, in order (default: all joints of the first state message)")
    m.add_argument("--action", metavar="TOPIC", help="action topic: JointState, JointTrajectory (first point) or "
                                                    "Float64MultiArray (its type is read from the bag)")
    m.add_argument("--action-joints", action="append", metavar="NAME[,NAME...]",
                   help="joints of action, in order (default: --joints)")
    m.add_argument("--fps", type=int, help="output frame rate (integer)")
    m.add_argument("--repo-id", help="dataset repo id (owner/name)")
    m.add_argument("--instruction", help="task text for every episode")
    m.add_argument("--instruction-topic", help="std_msgs/String topic carrying the task text")
    a = p.add_argument_group("alignment, gaps and episodes")
    a.add_argument("--gap-policy", choices=GAP_POLICIES,
                   help="a stream gap longer than max_age_s: split the episode (default), hold the last sample "
                        "(ages in a sample_age_s column), or fail")
    a.add_argument("--max-age-s", type=float, help="how far a sample may be from its frame time (default 0.1)")
    a.add_argument("--camera-rule", choices=RULES, help="images nearest in time (default) or latest at/before")
    a.add_argument("--state-rule", choices=RULES, help="state latest at/before the frame time (default) or nearest")
    a.add_argument("--episode-split", choices=("bag", "marker", "gap"), help="how episodes are delimited")
    a.add_argument("--episode-marker-topic", help="marker topic (std_msgs/String start/stop/discard or Bool)")
    a.add_argument("--episode-gap-s", type=float, help="pause that separates episodes (episode_split gap)")
    a.add_argument("--skip-non-monotonic", action="store_true", default=None,
                   help="drop messages whose header stamp does not increase instead of failing")
    o = p.add_argument_group("output")
    o.add_argument("--no-videos", action="store_true", help="store PNG images instead of videos")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    o.add_argument("--report-json", help="write the conversion report (per bag: episodes, gaps, skew) to this file")
    o.add_argument("--strict", action="store_true",
                   help=f"exit {EXIT_STRICT} when anything was repaired (a gap split or held, messages skipped)")
    o.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    o.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def _names(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _params(args: argparse.Namespace, bags: list[Path]) -> dict[str, Any]:
    """The params file's values, then the command line's over them (topics checked against the first bag)."""
    params: dict[str, Any] = dict(load_params_file(args.params_file)) if args.params_file else {}
    remaps = list(params.get("topic_remaps") or [])
    if args.camera or args.no_cameras:
        if args.camera and args.no_cameras:
            raise BagConfigError("--camera and --no-cameras exclude each other")
        keys = []
        for item in args.camera:
            key, sep, topic = item.partition("=")
            if not sep or not key or not topic:
                raise BagConfigError(f"--camera takes KEY=TOPIC (e.g. face_view=/cam0/image_raw), got {item!r}")
            keys.append(key)
            # the key's recorder topic, raw or compressed, is renamed to the given one
            remaps += [f"{key}/image_raw:={topic}", f"{key}/image_raw/compressed:={topic}"]
        params["cameras"] = keys or [""]
    params["topic_remaps"] = remaps
    for flag, name in (("state", "joint_states_topic"), ("action", "action_topic"), ("fps", "fps"),
                       ("repo_id", "repo_id"), ("instruction", "instruction"), ("instruction_topic",
                       "instruction_topic"), ("gap_policy", "gap_policy"), ("max_age_s", "max_age_s"),
                       ("camera_rule", "camera_rule"), ("state_rule", "state_rule"),
                       ("skip_non_monotonic", "skip_non_monotonic")):
        if getattr(args, flag) is not None:
            params[name] = getattr(args, flag)
    if args.episode_split:
        params["episode_split"] = args.episode_split
    if args.episode_marker_topic:
        params["episode_marker_topic"] = args.episode_marker_topic
    if args.episode_gap_s:
        params["episode_gap_s"] = args.episode_gap_s
    if args.no_videos:
        params["use_videos"] = False
    for flag, name in (("joints", "joint_names"), ("action_joints", "action_joint_names")):
        names = _names(getattr(args, flag))
        if names:
            params[name] = names
    if not args.params_file:
        params.setdefault("action_type", None)  # flags only: read from the bag below
    with RosBag(bags[0]) as bag:
        _complete_from_bag(params, bag, args)
    return params


def _complete_from_bag(params: dict[str, Any], bag: RosBag, args: argparse.Namespace) -> None:
    """Fill what the command line left to the bag (action type, joint names) and name the missing mappings."""
    probe = BagConversionConfig.from_params({k: v for k, v in params.items() if k != "action_type" or v} |
                                            {"joint_names": params.get("joint_names") or ["?"]})
    if not args.params_file and "cameras" not in params:
        images = bag.topics_of(IMAGE_TYPES)
        raise BagConfigError("no cameras given: pass --camera KEY=TOPIC for each camera (image topics in "
                             f"{bag.path}: {', '.join(images) or 'none'}), or --no-cameras for a state-only dataset")
    state_topic = probe.state_topic
    if not args.params_file and not args.action:
        options = [t for t in bag.topics_of(ACTION_TYPES) if t != state_topic]
        raise BagConfigError(f"no action topic given: pass --action TOPIC (candidates in {bag.path}: "
                             f"{', '.join(options) or 'none'})")
    if args.action or not params.get("action_type"):
        action = bag.require(probe.action_topic_name, ACTION_TYPES, "action")
        params["action_type"] = _ACTION_TYPE_OF[action.msgtype]
    if not [n for n in params.get("joint_names") or [] if n]:
        bag.require(state_topic, STATE_TYPES, "joint states")
        first = next(iter(bag.messages([state_topic])))
        names = [str(n) for n in bag.deserialize(first).name]
        if not names:
            raise BagConfigError(f"the first message on {state_topic} names no joints: pass --joints")
        params["joint_names"] = names
        log.info("joints of observation.state from %s: %s", state_topic, ", ".join(names))
        named_action = params["action_type"] != "Float64MultiArray"
        if named_action and not [n for n in params.get("action_joint_names") or [] if n]:
            msg = bag.deserialize(next(iter(bag.messages([probe.action_topic_name]))))
            action_names = [str(n) for n in (msg.name if params["action_type"] == "JointState" else msg.joint_names)]
            if action_names:
                params["action_joint_names"] = action_names
                log.info("joints of action from %s: %s", probe.action_topic_name, ", ".join(action_names))


def _progress(disabled: bool) -> Any:
    from tqdm import tqdm

    def make(total: int, name: str) -> Any:
        return tqdm(total=total, desc=name, unit="msg", unit_scale=True, disable=disabled, leave=False,
                    dynamic_ncols=True)
    return make


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--ros-args" in argv:  # started by ros2 run / launch: ROS arguments are not ours
        argv = argv[:argv.index("--ros-args")]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="[bag2dataset] %(levelname)s %(message)s")
    report: ConversionReport | None = None
    root = Path(args.root or ".").expanduser()
    try:
        bags = [bag for path in args.bags for bag in find_bags(path)]
        config = BagConversionConfig.from_params(_params(args, bags))
        if not args.root and not config.root:
            raise BagConfigError("no dataset folder: pass --root or set root in the params file")
        root = Path(args.root or config.root).expanduser()
        log.info("%d bag(s) -> %s (%s, %d fps, episodes split by %s, gap_policy %s)", len(bags), root,
                 config.repo_id, config.fps, config.episode_split.mode, config.gap_policy)
        report = convert_bags(bags, config, root, progress=_progress(args.no_progress))
    except KeyboardInterrupt:
        print(f"interrupted: {_incomplete_note(root)}", file=sys.stderr)
        return 130
    except (DatasetError, CoreError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        print(_incomplete_note(root), file=sys.stderr)
        return 1
    except Exception as err:  # a bug or an input nobody anticipated: still one line, never a traceback
        if args.debug:
            traceback.print_exc()
        print(f"error: unexpected {type(err).__name__}: {err} (--debug shows where; please report it)",
              file=sys.stderr)
        print(_incomplete_note(root), file=sys.stderr)
        return 1
    finally:
        if args.report_json and report is not None:
            doc = {**asdict(report), "repairs": report.repairs()}
            Path(args.report_json).write_text(json.dumps(doc, indent=2) + "\n")
    print(report.summary())
    if not report.complete:
        return 1
    if args.strict and report.repairs():
        print(f"strict: the dataset is complete, but {'; '.join(report.repairs())}", file=sys.stderr)
        return EXIT_STRICT
    return 0


def _incomplete_note(root: Path) -> str:
    marker = root / "meta" / INCOMPLETE_MARKER
    if marker.exists():
        return f"the dataset at {root} is marked INCOMPLETE ({marker}); re-run to finish it"
    return f"nothing was written to {root}" if not (root / "meta").exists() else f"dataset at {root} unchanged"


if __name__ == "__main__":
    raise SystemExit(main())
