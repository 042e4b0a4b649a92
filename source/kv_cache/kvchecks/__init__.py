"""Shared check code for the KV-cache exercise.

Used by the public tests in ``tests/``, by the hidden tests and by the graders.
It never contains solution code: only the contract, inputs, probes that drive
a ``kvcache`` package, and comparisons against saved reference outputs.
"""
