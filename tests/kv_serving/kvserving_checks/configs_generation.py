"""Small configurations the public checks of TODOs 4-6 use (the hidden checks use others), and two helpers their
tests share: the lookup of known mistakes and the counts of ``SpeculativeDecoder.stats``."""

from kvchecks import mistakes as known

# The shell of the scripted probes: its forward is replaced, so only its shape (which sizes the caches) matters.
SCRIPTED = dict(depth=2, hidden_dim=8, vocab_size=97, num_heads=2, max_seq_len=24)
# Real seeded models: a target with grouped-query attention and rotary positions, and a shallower, narrower draft.
MODEL = dict(depth=2, hidden_dim=32, vocab_size=61, num_heads=4, num_kv_heads=2)
DRAFT = dict(depth=1, hidden_dim=16, vocab_size=61, num_heads=2)
CACHE = dict(num_layers=2, batch_size=2, num_kv_heads=2, head_dim=4, max_seq_len=12)

# Whole-model logits pass through every layer: float32 rounding of honest implementations written differently
# stays near 1e-5; real bugs move logits by 0.1 or more.
LOGITS = dict(atol=1e-4, rtol=1e-4)

STATS = ("target_calls", "draft_calls", "proposed", "accepted")  # what SpeculativeDecoder.stats holds


def mistake_hint(seen: dict, pick, got) -> str:
    """The hints of the known mistakes (``seen``: name -> observation) whose ``pick(observation)`` equals
    ``got``, or ``""``."""
    return " ".join(known.hint(name) for name, observed in seen.items() if pick(observed) == got)


def counts(stats):
    """The four counts of ``stats`` that the contract names (other keys are the student's own), or ``stats`` itself
    when it lacks them."""
    return {k: stats[k] for k in STATS} if isinstance(stats, dict) and set(stats) >= set(STATS) else stats
