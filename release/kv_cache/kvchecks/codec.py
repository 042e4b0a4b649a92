"""A safe, lossless encoding of probe inputs and outputs as JSON.

Probe results cross from the student's process to the grader's. Pickle would
let the student's process run code in the grader, so results travel as JSON:
tensors become ``{"__tensor__": dtype, "shape": [...], "data": base64}``;
anything that is not a plain value or a tensor becomes an ``Unsupported``
marker naming its type. The torch functions used here are bound when this
module is imported, before any student code runs.
"""

from __future__ import annotations

import base64
import json
import math

import torch

_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "bool": torch.bool,
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}
_TENSOR = torch.Tensor
_as_plain = torch.Tensor.as_subclass
_detach = torch.Tensor.detach
_to = torch.Tensor.to
_contiguous = torch.Tensor.contiguous
_view = torch.Tensor.view
_numpy = torch.Tensor.numpy
_frombuffer = torch.frombuffer


class Unsupported:
    """Stands for a value that could not be encoded (only its type name survives)."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


def _encode_tensor(t: torch.Tensor) -> dict:
    plain = _as_plain(t, _TENSOR)
    dtype = plain.dtype
    if dtype not in _NAMES:
        return {"__unsupported__": f"tensor of dtype {dtype}"}
    plain = _contiguous(_to(_detach(plain), "cpu"))
    raw = bytes(_numpy(_view(plain, torch.uint8) if dtype == torch.bfloat16 else plain).tobytes()) if plain.numel() else b""
    return {"__tensor__": _NAMES[dtype], "shape": list(plain.shape), "data": base64.b64encode(raw).decode()}


def to_jsonable(value, depth: int = 0):
    """Turn ``value`` into JSON-ready data; unknown objects become markers."""
    if depth > 20:
        return {"__unsupported__": "nesting too deep"}
    kind = type(value)
    if value is None or kind in (bool, str):
        return value
    if kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, _TENSOR):
        return _encode_tensor(value)
    if kind in (list, tuple):
        return [to_jsonable(v, depth + 1) for v in value]
    if kind is dict and all(type(k) is str for k in value):
        return {k: to_jsonable(v, depth + 1) for k, v in value.items()}
    return {"__unsupported__": kind.__qualname__}


def from_jsonable(data):
    """The inverse of :func:`to_jsonable`; tensors come back as new plain CPU tensors."""
    if isinstance(data, list):
        return [from_jsonable(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "__tensor__" in data:
        dtype = _DTYPES[data["__tensor__"]]
        raw = bytearray(base64.b64decode(data["data"]))
        shape = [int(s) for s in data["shape"]]
        if not raw:
            return torch.zeros(shape, dtype=dtype)
        storage_dtype = torch.uint8 if dtype == torch.bfloat16 else dtype
        flat = _frombuffer(raw, dtype=storage_dtype)
        return (flat.view(dtype) if dtype == torch.bfloat16 else flat).reshape(shape).clone()
    if "__float__" in data:
        return float(data["__float__"])
    if "__unsupported__" in data:
        return Unsupported(str(data["__unsupported__"]))
    return {k: from_jsonable(v) for k, v in data.items()}


def dumps(value) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"))


def loads(text: str):
    return from_jsonable(json.loads(text))
