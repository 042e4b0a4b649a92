"""Part 3's own command: ``kvkit --assignment kv_paging bench`` (paged memory, a shared prompt, continuous batching,
the int8 cache)."""

COMMANDS = ["bench"]
