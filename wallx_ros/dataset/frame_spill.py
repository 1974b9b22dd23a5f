"""Bytes for a recorded frame waiting on disk (the writer queue's spill), without pickle.

A spilled frame is an :class:`AlignedFrame` of numpy arrays plus its task string. It is written as a JSON
header (frame fields, and per array its dtype, shape and byte length) followed by the raw array bytes, so
reading a spill file back can only ever produce arrays and plain values: nothing in it is executed, whoever
wrote the file (the package loads no pickle anywhere, see test_safe_loading.py).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from wallx_ros.core.frame_alignment import AlignedFrame
from wallx_ros.dataset.errors import DatasetWriteError

__all__ = ["SpilledFrame", "decode_frame", "encode_frame"]

SpilledFrame = tuple[AlignedFrame[Any], str]
_HEADER_LENGTH = struct.Struct("<I")


def encode_frame(payload: SpilledFrame) -> bytes:
    """``(frame, task)`` as header length, JSON header, then each value's bytes in header order."""
    frame, task = payload
    arrays = []
    blobs = []
    for name, value in frame.values.items():
        array = np.ascontiguousarray(value)
        if array.dtype.hasobject:
            raise DatasetWriteError(f"frame value {name!r} is not a plain array ({array.dtype}): cannot spill it")
        arrays.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape), "nbytes": array.nbytes})
        blobs.append(array.tobytes())
    header = json.dumps({"index": frame.index, "stamp_ns": frame.stamp_ns, "sample_stamps_ns": frame.sample_stamps_ns,
                         "held": list(frame.held), "dropped_before": frame.dropped_before,
                         "gap_streams": list(frame.gap_streams), "task": task, "arrays": arrays}).encode()
    return b"".join([_HEADER_LENGTH.pack(len(header)), header, *blobs])


def decode_frame(data: bytes) -> SpilledFrame:
    """The ``(frame, task)`` :func:`encode_frame` wrote (arrays are fresh, writable copies)."""
    (length,) = _HEADER_LENGTH.unpack_from(data, 0)
    offset = _HEADER_LENGTH.size + length
    header = json.loads(data[_HEADER_LENGTH.size:offset])
    values: dict[str, Any] = {}
    for entry in header["arrays"]:
        end = offset + int(entry["nbytes"])
        values[entry["name"]] = np.frombuffer(data[offset:end], dtype=np.dtype(entry["dtype"])).reshape(
            entry["shape"]).copy()
        offset = end
    if offset != len(data):
        raise DatasetWriteError(f"spilled frame: {len(data) - offset} bytes left over (a damaged spill file)")
    frame = AlignedFrame(index=int(header["index"]), stamp_ns=int(header["stamp_ns"]), values=values,
                         sample_stamps_ns={k: int(v) for k, v in header["sample_stamps_ns"].items()},
                         held=tuple(header["held"]), dropped_before=int(header["dropped_before"]),
                         gap_streams=tuple(header["gap_streams"]))
    return frame, str(header["task"])
