"""Crash safety of a LeRobot v3 dataset that is written one episode at a time: commit journal + quarantine.

Why this exists: in LeRobot v3 the data and episode-metadata parquet files only get their footer when
``finalize()`` closes them, ``meta/info.json``, ``meta/stats.json`` and ``meta/tasks.parquet`` are
rewritten in place at every ``save_episode``, and the videos of several episodes are concatenated into
one mp4. A process killed between ``save_episode`` and ``finalize`` can therefore leave files that make
the whole folder unloadable. The writer avoids in-place growth (it finalizes after every episode and
reopens the dataset, so every episode lands in new data/meta/video files) and records each commit here.

Layout: next to the dataset folder ``<parent>/<name>`` lives ``<parent>/.<name>.wallx_ros/``:

* ``commit.json`` (replaced atomically): committed episode/frame counts, every committed file under
  ``data/``, ``meta/episodes/`` and ``videos/`` with its size, and the snapshot that holds the committed
  ``meta/info.json``, ``meta/stats.json``, ``meta/tasks.parquet``;
* ``snapshots/<seq>/``: those metadata copies;
* ``quarantine/<UTC time>/``: whatever a killed process left behind (partial parquet files, unreferenced
  videos, PNG frames of an unfinished episode, encoder temp folders), moved aside, never deleted;
* ``hf_cache/``: the arrow cache Hugging Face ``datasets`` builds when the dataset is opened;
* ``lock``: held (flock) while a writer has the dataset open.

Recovery on open restores exactly the last commit. A dataset without a journal (written by another tool)
is adopted only when it is consistent; otherwise nothing is changed and an error says why.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from wallx_ros.dataset.errors import DatasetRecoveryError, DatasetStateError

__all__ = ["COMMITTED_META_FILES", "CommitJournal", "RecoveryReport", "state_dir_for"]

COMMITTED_META_FILES = ("meta/info.json", "meta/stats.json", "meta/tasks.parquet")
_TRACKED_DIRS = ("data", "meta/episodes", "videos")
_JOURNAL_VERSION = 1


def state_dir_for(root: Path) -> Path:
    """The hidden sibling folder holding a dataset's journal, snapshots, quarantine and cache."""
    return root.parent / f".{root.name}.wallx_ros"


@dataclass(frozen=True)
class RecoveryReport:
    """What opening the dataset found and did."""

    committed_episodes: int = 0
    committed_frames: int = 0
    fresh: bool = True  # no usable dataset: it has to be created
    adopted: bool = False  # a dataset without a journal was checked and adopted
    quarantined: tuple[str, ...] = ()
    restored: tuple[str, ...] = ()
    quarantine_dir: Path | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def repaired(self) -> bool:
        return bool(self.quarantined or self.restored)

    def summary(self) -> str:
        state = "new dataset" if self.fresh else f"{self.committed_episodes} episodes, {self.committed_frames} frames"
        parts = [state]
        if self.adopted:
            parts.append("adopted (had no wallx_ros journal)")
        if self.quarantined:
            parts.append(f"moved {len(self.quarantined)} leftover file(s) of an interrupted run to "
                         f"{self.quarantine_dir}")
        if self.restored:
            parts.append(f"restored {', '.join(self.restored)} from the last commit")
        parts.extend(self.notes)
        return "; ".join(parts)


def _utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync_file(path)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class CommitJournal:
    """The commit record of one dataset folder (see module doc). Not thread-safe; one per process."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.state_dir = state_dir_for(self.root)
        self._lock_file: TextIO | None = None

    @property
    def journal_path(self) -> Path:
        return self.state_dir / "commit.json"

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "hf_cache"

    # -- exclusive use ------------------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the per-dataset lock (released by ``unlock`` or when the process dies, even by SIGKILL)."""
        if self._lock_file is not None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        f = open(self.state_dir / "lock", "a+")  # noqa: SIM115 - held open while the dataset is in use
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            f.seek(0)
            holder = f.read().strip() or "another process"
            f.close()
            raise DatasetStateError(
                f"dataset {self.root} is open for writing by {holder}; stop that recorder or choose another root"
            ) from err
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        self._lock_file = f

    def unlock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # -- journal ------------------------------------------------------------------------------------------
    def read(self) -> dict[str, Any] | None:
        try:
            raw = json.loads(self.journal_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as err:
            raise DatasetRecoveryError(
                f"{self.journal_path} is unreadable ({err}); it is replaced atomically, so this is outside damage. "
                f"Move {self.state_dir} away to re-check the dataset from scratch"
            ) from err
        if not isinstance(raw, dict) or raw.get("version") != _JOURNAL_VERSION:
            raise DatasetRecoveryError(f"{self.journal_path}: unknown journal format; move {self.state_dir} away")
        return raw

    def _tracked_files(self) -> dict[str, int]:
        files = {}
        for top in _TRACKED_DIRS:
            base = self.root / top
            if base.is_dir():
                for p in base.rglob("*"):
                    if p.is_file():
                        files[p.relative_to(self.root).as_posix()] = p.stat().st_size
        return files

    def commit(self, episodes: int, frames: int) -> None:
        """Record the dataset's current files as committed (call right after ``finalize``)."""
        previous = self.read()
        seq = int(previous["seq"]) + 1 if previous else 1
        files = self._tracked_files()
        old = set(previous["files"]) if previous else set()
        for rel in sorted(set(files) - old):  # new files reach the disk before the journal names them
            _fsync_file(self.root / rel)
        snaps = self.state_dir / "snapshots"
        snap = snaps / f"{seq:08d}"
        tmp = snaps / f"{seq:08d}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        saved = []
        for rel in COMMITTED_META_FILES:
            src = self.root / rel
            if src.is_file():
                dst = tmp / Path(rel).name
                shutil.copyfile(src, dst)
                _fsync_file(dst)
                saved.append(rel)
        shutil.rmtree(snap, ignore_errors=True)
        os.replace(tmp, snap)
        record = {"version": _JOURNAL_VERSION, "seq": seq, "episodes": episodes, "frames": frames,
                  "snapshot": snap.relative_to(self.state_dir).as_posix(), "meta": saved, "files": files,
                  "committed_at": _utc_stamp(), "pid": os.getpid()}
        _atomic_write(self.journal_path, (json.dumps(record, indent=1) + "\n").encode())
        for other in snaps.iterdir():
            if other != snap:
                shutil.rmtree(other, ignore_errors=True)

    # -- recovery -----------------------------------------------------------------------------------------
    def recover(self) -> RecoveryReport:
        """Bring ``root`` back to its last commit (see module doc). Call with the lock held."""
        journal = self.read()
        if not self.root.exists():
            if journal is not None:  # the dataset was deleted: its journal describes nothing any more
                stale = self.journal_path.with_name(f"commit.json.stale-{_utc_stamp()}")
                os.replace(self.journal_path, stale)
                shutil.rmtree(self.state_dir / "snapshots", ignore_errors=True)
                return RecoveryReport(notes=(f"{self.root} was deleted; its old journal is now {stale.name}",))
            return RecoveryReport()
        if journal is None:
            return self._adopt_or_reset()
        if int(journal["episodes"]) == 0:
            return self._reset("the last commit had no episode")
        return self._restore(journal)

    def _quarantine(self, rels: list[str], stamp: str) -> Path:
        qdir = self.state_dir / "quarantine" / stamp
        for rel in rels:
            src = self.root / rel
            dst = qdir / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dst))
        return qdir

    def _leftovers(self) -> list[str]:
        """Top-level paths an interrupted LeRobot run leaves: PNG frames, encoder temp folders."""
        out = []
        for p in sorted(self.root.iterdir()):
            if p.name == "images" or (p.is_dir() and p.name.startswith("tmp")):
                if p.is_dir() and not any(f.is_file() for f in p.rglob("*")):
                    shutil.rmtree(p, ignore_errors=True)  # empty folders LeRobot leaves after clearing a buffer
                    continue
                out.append(p.name)
        return out

    def _reset(self, why: str) -> RecoveryReport:
        """No committed episode: move the whole folder's content aside so the dataset is created anew."""
        stamp = _utc_stamp()
        rels = sorted(p.name for p in self.root.iterdir())
        qdir = self._quarantine(rels, stamp) if rels else None
        self.root.rmdir()
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()
        return RecoveryReport(quarantined=tuple(rels), quarantine_dir=qdir, notes=(f"{why}: starting a new dataset",))

    def _restore(self, journal: dict[str, Any]) -> RecoveryReport:
        committed: dict[str, int] = {str(k): int(v) for k, v in journal["files"].items()}
        damaged = []
        for rel, size in committed.items():
            p = self.root / rel
            if not p.is_file():
                damaged.append(f"{rel} is missing")
            elif p.stat().st_size != size:
                damaged.append(f"{rel} changed size ({p.stat().st_size} != {size} bytes)")
        if damaged:
            raise DatasetRecoveryError(
                f"committed files of {self.root} were changed outside the recorder: {damaged[:5]}"
                f"{' ...' if len(damaged) > 5 else ''}. Restore them from a backup, or move {self.state_dir} "
                "away to have the folder checked like a foreign dataset"
            )
        stray = sorted(set(self._tracked_files()) - set(committed)) + self._leftovers()
        stamp = _utc_stamp()
        qdir = self._quarantine(stray, stamp) if stray else None
        restored = []
        snap = self.state_dir / str(journal["snapshot"])
        for rel in journal["meta"]:
            saved = snap / Path(rel).name
            live = self.root / rel
            if not saved.is_file():
                raise DatasetRecoveryError(f"snapshot file {saved} is missing; move {self.state_dir} away to re-check")
            if live.is_file() and live.read_bytes() == saved.read_bytes():
                continue
            if live.exists():
                qdir = self._quarantine([rel], stamp)
            tmp = live.with_name(live.name + ".wallx_ros_restore")
            shutil.copyfile(saved, tmp)
            _fsync_file(tmp)
            os.replace(tmp, live)
            restored.append(rel)
        for other in (self.state_dir / "snapshots").iterdir():
            if other != snap:
                shutil.rmtree(other, ignore_errors=True)
        return RecoveryReport(committed_episodes=int(journal["episodes"]), committed_frames=int(journal["frames"]),
                              fresh=False, quarantined=tuple(stray), restored=tuple(restored),
                              quarantine_dir=qdir)

    def _adopt_or_reset(self) -> RecoveryReport:
        info_path = self.root / "meta" / "info.json"
        if not any(self.root.iterdir()):
            self.root.rmdir()
            return RecoveryReport()
        try:
            info = json.loads(info_path.read_text())
        except FileNotFoundError:
            info = None
        except (OSError, json.JSONDecodeError):
            info = {}
        has_episodes = any((self.root / d).is_dir() and any((self.root / d).rglob("*.parquet"))
                           for d in ("data", "meta/episodes"))
        if info is None:
            raise DatasetRecoveryError(
                f"{self.root} exists and is not a LeRobot dataset (no meta/info.json); choose a new or empty folder")
        if not has_episodes and int(info.get("total_episodes", 0) or 0) <= 1:
            # created (maybe killed in its first episode) but never committed: start again
            return self._reset("the folder holds no saved episode")
        problems = self._check_foreign(info)
        if problems:
            raise DatasetRecoveryError(
                f"{self.root} is a LeRobot dataset this recorder did not write (no {self.journal_path.name} in "
                f"{self.state_dir}) and it is inconsistent: {problems[:5]}. It was left untouched: repair it with "
                "LeRobot's tools or record into a new root")
        episodes = int(info["total_episodes"])
        frames = int(info.get("total_frames", 0))
        stray = self._leftovers()
        qdir = self._quarantine(stray, _utc_stamp()) if stray else None
        self.commit(episodes, frames)
        return RecoveryReport(committed_episodes=episodes, committed_frames=frames, fresh=False, adopted=True,
                              quarantined=tuple(stray), quarantine_dir=qdir)

    def _check_foreign(self, info: dict[str, Any]) -> list[str]:
        """Cheap consistency checks of a dataset without a journal: readable parquet footers, counts."""
        import pyarrow.parquet as pq

        problems = []
        if not info.get("features"):
            problems.append("meta/info.json is unreadable or has no features")
            return problems
        rows = 0
        for top in ("data", "meta/episodes"):
            for p in sorted((self.root / top).rglob("*.parquet")):
                try:
                    n = pq.read_metadata(p).num_rows
                except Exception as err:  # pyarrow raises several types for a truncated file
                    problems.append(f"{p.relative_to(self.root)} is not a complete parquet file ({err})")
                    continue
                if top == "meta/episodes":
                    rows += n
        if not problems and rows != int(info.get("total_episodes", -1)):
            problems.append(f"meta/info.json says {info.get('total_episodes')} episodes, meta/episodes has {rows}")
        return problems

    def prune_cache(self, keep: list[Path]) -> None:
        """Delete ``datasets`` cache entries of earlier opens (each holds a full copy of the data)."""
        base = self.cache_dir
        if not base.is_dir():
            return
        keep_configs = {p.resolve().parents[2] for p in keep if len(p.resolve().parents) > 2}
        names = {c.name for c in keep_configs}
        for config in base.glob("*/*"):  # <builder>/<config>: one per open
            if config.is_dir() and config.resolve() not in keep_configs:
                shutil.rmtree(config, ignore_errors=True)
        for lock in base.rglob("*.lock"):
            if not any(n in lock.name or n in lock.parent.as_posix() for n in names):
                with contextlib.suppress(OSError):
                    lock.unlink()
