"""Two small operations: :class:`Scaler` and :class:`RunningSum`."""

from .ops import RunningSum, Scaler

__all__ = ["RunningSum", "Scaler"]
