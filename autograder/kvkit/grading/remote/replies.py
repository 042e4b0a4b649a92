"""The child's replies, checked before they are decoded: the size of a message, JSON objects only, and every
tensor well formed and small, so nothing the child sends can run code in the grader or make it allocate much."""

from __future__ import annotations

import base64
import json
import time

from kvchecks.i18n import _

from ..child import protocol

MAX_REPLY = 64 * 1024 * 1024
MAX_ELEMENTS = 4 * 1024 * 1024  # per tensor in a reply; the checks' tensors have a few thousand
_ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4, "bool": 1}


def receive_reply(fd: int, timeout: float) -> dict | None:
    """The next message; None if the child closed its end; ``TimeoutError``; ``ValueError`` if malformed."""
    deadline = time.monotonic() + timeout
    header = protocol.read_exactly(fd, protocol.HEADER.size, deadline)
    if header is None:
        return None
    (size,) = protocol.HEADER.unpack(header)
    if size > MAX_REPLY:
        raise ValueError(_("a reply of {size} bytes is over the {limit} byte limit").format(size=size, limit=MAX_REPLY))
    data = protocol.read_exactly(fd, size, deadline)
    if data is None:
        return None
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as err:
        raise ValueError(_("not JSON: {error}").format(error=str(err)[:100]))
    if not isinstance(message, dict):
        raise ValueError(_("not a JSON object"))
    return message


def check_reply(data, depth: int = 0) -> None:
    """``ValueError`` unless every tensor in ``data`` is well formed and small (checked before decoding)."""
    if depth > 40:
        raise ValueError(_("reply nested too deeply"))
    if isinstance(data, list):
        for item in data:
            check_reply(item, depth + 1)
    elif isinstance(data, dict):
        if "__tensor__" in data:
            dtype, shape, raw = data.get("__tensor__"), data.get("shape"), data.get("data")
            if dtype not in _ITEMSIZE or not isinstance(shape, list) or not isinstance(raw, str):
                raise ValueError(_("malformed tensor in reply"))
            if not all(type(s) is int and 0 <= s <= MAX_ELEMENTS for s in shape) or len(shape) > 8:
                raise ValueError(_("malformed tensor shape in reply"))
            count = 1
            for s in shape:
                count *= s
            if count > MAX_ELEMENTS:
                raise ValueError(_("tensor of {count} elements in reply (limit {limit})").format(count=count,
                                                                                                 limit=MAX_ELEMENTS))
            if len(base64.b64decode(raw, validate=True)) != count * _ITEMSIZE[dtype]:
                raise ValueError(_("tensor data does not match its shape"))
        else:
            for value in data.values():
                check_reply(value, depth + 1)
