"""Part 2's own command: ``kvkit --assignment kv_serving bench`` (GQA memory, the bounded cache, batching,
speculative decoding)."""

COMMANDS = ["bench"]
