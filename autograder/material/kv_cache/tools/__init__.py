"""Part 1's own commands: what the cache buys (``kvkit bench``), a multi-turn demo and GPT-2 weights through the
student's cache (``kvkit generate --hf``)."""

COMMANDS = ["bench", "chat_demo", "generate"]
