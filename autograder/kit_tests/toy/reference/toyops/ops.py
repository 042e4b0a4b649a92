"""A scaler of tensors and a running sum."""

import torch


class Scaler:
    """Multiplies tensors by a factor fixed at construction."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x * factor`` as a new tensor of ``x``'s shape ``[...]``; ``x`` is left unchanged."""
        ### BEGIN SOLUTION
        return x * self.factor
        ### END SOLUTION


class RunningSum:
    """The running total of the values it is given, starting at 0."""

    def __init__(self) -> None:
        self.total = 0.0

    def add(self, value: float) -> float:
        """Add ``value`` to the total and return the new total."""
        ### BEGIN SOLUTION
        self.total += value
        return self.total
        ### END SOLUTION
