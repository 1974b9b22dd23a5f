"""Read rosbag2 recordings without ROS: ``rosbags`` opens mcap and sqlite3 storage (zstd-compressed too)
and deserialises CDR itself, with the bag's own message definitions where it carries them.

Every failure of the underlying library (missing metadata, bad magic, truncated chunk, corrupt database,
undecodable payload) comes out as :class:`BagReadError` naming the bag and what to do about it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from rosbags.interfaces import Connection, MessageDefinitionFormat
from rosbags.rosbag2 import Reader, ReaderError
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from wallx_ros.dataset.errors import BagReadError, MissingTopicError, UnsupportedMessageTypeError

__all__ = ["BagMessage", "BagTopic", "RosBag", "find_bags"]

# Exceptions the storage plugins and the deserialiser raise on damaged input (beyond ReaderError).
_READ_ERRORS: tuple[type[BaseException], ...] = (
    ReaderError, sqlite3.DatabaseError, struct.error, EOFError, OSError, ValueError, KeyError, IndexError,
    AssertionError, TypeError,
)
_DEFAULT_STORE = Stores.ROS2_KILTED


@dataclass(frozen=True)
class BagTopic:
    """A topic of a bag: its message type and how many messages it holds."""

    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class BagMessage:
    """One serialized message: topic, type, the bag's receive (log) time and the CDR bytes."""

    topic: str
    msgtype: str
    log_ns: int
    raw: bytes | memoryview


def find_bags(path: str | Path) -> list[Path]:
    """The bags at ``path``: itself when it is a bag (a rosbag2 folder or an .mcap/.db3 file), else every
    bag folder or lone storage file below it, sorted by path (one bag = one recording)."""
    path = Path(path)
    if not path.exists():
        raise BagReadError(f"{path} does not exist: give a rosbag2 folder, an .mcap/.db3 file, or a folder of bags")
    if path.is_file() or (path / "metadata.yaml").is_file():
        return [path]
    bags: list[Path] = []
    for meta in sorted(path.rglob("metadata.yaml")):
        bags.append(meta.parent)
    inside = set(bags)
    for ext in ("*.mcap", "*.db3"):
        for file in sorted(path.rglob(ext)):
            if not any(parent in inside for parent in file.parents):
                bags.append(file)
    if not bags:
        raise BagReadError(f"no rosbag2 found under {path} (looked for metadata.yaml, *.mcap, *.db3)")
    return sorted(bags)


class RosBag:
    """An open rosbag2: a folder with ``metadata.yaml`` or a single ``.mcap`` / ``.db3`` file.

    Use as a context manager. ``messages`` yields serialized messages of the chosen topics in log-time
    order; ``deserialize`` turns one into a message object with the usual ROS field names.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagReadError(f"bag {self.path} does not exist")
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except FileNotFoundError as err:
            raise BagReadError(f"{self.path} is not a rosbag2 ({err}): give the bag folder (with metadata.yaml) "
                               "or its .mcap/.db3 file") from err
        except _READ_ERRORS as err:
            raise BagReadError(f"cannot open bag {self.path}: {err} (corrupt or truncated; a recording that was "
                               "killed may need `ros2 bag reindex` before it can be read)") from err
        self._connections: list[Connection] = list(self._reader.connections)
        self.typestore = self._make_typestore()
        self._deserializers: dict[str, Any] = {}
        counts: dict[str, int] = {}
        types: dict[str, str] = {}
        for conn in self._connections:
            counts[conn.topic] = counts.get(conn.topic, 0) + conn.msgcount
            if conn.topic in types and types[conn.topic] != conn.msgtype:
                raise BagReadError(f"bag {self.path}: topic {conn.topic} carries two message types "
                                   f"({types[conn.topic]}, {conn.msgtype}); record one type per topic")
            types[conn.topic] = conn.msgtype
        self.topics: dict[str, BagTopic] = {t: BagTopic(t, types[t], counts[t]) for t in sorted(types)}

    # -- lifecycle ---------------------------------------------------------------------------------------
    def close(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> RosBag:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- metadata ----------------------------------------------------------------------------------------
    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        return int(self._reader.end_time)

    @property
    def message_count(self) -> int:
        return int(self._reader.message_count)

    def identity(self) -> str:
        """A content identity (sha256 over the storage files' sizes, heads and tails, and the metadata),
        stable when the bag is moved or renamed: what makes a re-run skip episodes it already wrote."""
        digest = hashlib.sha256()
        files = [self.path] if self.path.is_file() else sorted(
            p for p in self.path.iterdir() if p.is_file() and p.name != "metadata.yaml")
        for file in files:
            size = file.stat().st_size
            digest.update(f"{file.suffix}:{size}".encode())
            with file.open("rb") as f:
                digest.update(f.read(1 << 20))
                if size > 2 << 20:
                    f.seek(size - (1 << 20))
                    digest.update(f.read())
        digest.update(f"{self.message_count}:{self.start_ns}:{self.end_ns}".encode())
        return digest.hexdigest()[:32]

    def require(self, topic: str, allowed: Collection[str], role: str) -> BagTopic:
        """The topic, checked to exist with messages and to carry one of the ``allowed`` types."""
        info = self.topics.get(topic)
        if info is None:
            # only the topics that could play this role: a bag of 60 topics is no help in an error line
            fitting = self.topics_of(allowed)
            types = ", ".join(sorted(allowed))
            have = (f"its topics of a fitting type ({types}): {', '.join(fitting)}" if fitting else
                    f"it has no topic of a fitting type ({types})")
            raise MissingTopicError(f"bag {self.path} has no topic {topic} ({role}); {have}. "
                                    "Fix the topic name in the conversion config (or the command line)")
        if info.msgtype not in allowed:
            raise UnsupportedMessageTypeError(
                f"bag {self.path}: topic {topic} ({role}) carries {info.msgtype}, which cannot be converted; "
                f"supported: {', '.join(sorted(allowed))}")
        if info.count == 0:
            raise MissingTopicError(f"bag {self.path}: topic {topic} ({role}) has no messages")
        return info

    # -- messages ----------------------------------------------------------------------------------------
    def topics_of(self, allowed: Collection[str]) -> list[str]:
        """Topics with messages whose type is one of ``allowed``, in bag order."""
        return [t for t, i in self.topics.items() if i.msgtype in allowed and i.count > 0]

    def messages(self, topics: Collection[str]) -> Iterator[BagMessage]:
        """Serialized messages of ``topics`` in log-time order."""
        conns = [c for c in self._connections if c.topic in topics]
        if not conns:
            return
        it = self._reader.messages(connections=conns)
        while True:
            try:
                conn, log_ns, raw = next(it)
            except StopIteration:
                return
            except _READ_ERRORS as err:
                raise BagReadError(f"bag {self.path} is corrupt or truncated: {err}") from err
            yield BagMessage(conn.topic, conn.msgtype, int(log_ns), raw)

    def deserialize(self, message: BagMessage) -> Any:
        """The message object (fields named as in ROS: ``header.stamp.sec``, ``data``, ...)."""
        try:
            return self.typestore.deserialize_cdr(message.raw, message.msgtype)
        except Exception as err:
            raise BagReadError(
                f"bag {self.path}: message on {message.topic} at log time {message.log_ns} ns cannot be "
                f"deserialised as {message.msgtype} ({type(err).__name__}: {err}); the bag is corrupt or "
                "its type definition differs from the message") from err

    def _make_typestore(self) -> Typestore:
        """The bag's own type definitions first, ROS 2 Kilted's standard ones for everything else."""
        store = get_typestore(Stores.EMPTY)
        typs: dict[str, Any] = {}
        for conn in self._connections:
            fmt = conn.msgdef.format
            try:
                if fmt == MessageDefinitionFormat.MSG and conn.msgdef.data:
                    typs.update(get_types_from_msg(conn.msgdef.data, conn.msgtype))
                elif fmt == MessageDefinitionFormat.IDL and conn.msgdef.data:
                    sep = "=" * 80 + "\n"
                    parts = conn.msgdef.data.split(sep)[1:] if conn.msgdef.data.startswith(f"{sep}IDL: ") \
                        else [f"IDL: x\n{conn.msgdef.data}"]
                    for part in parts:
                        typs.update(get_types_from_idl(part.split("\n", 1)[1]))
            except Exception as err:
                raise BagReadError(f"bag {self.path}: the stored definition of {conn.msgtype} cannot be "
                                   f"parsed ({err})") from err
        if typs:
            store.register(typs)
        default = get_typestore(_DEFAULT_STORE)
        missing = {name: fd for name, fd in default.fielddefs.items() if name not in store.fielddefs}
        store.register(missing)
        return store
