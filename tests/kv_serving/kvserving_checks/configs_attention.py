"""Small configurations the public checks of TODOs 1-3 use (the hidden checks add their own)."""

# One attention layer: hidden size 32, 4 query heads of size 8; three ways to share the key/value heads.
HEADS = {
    "mha": dict(hidden_dim=32, num_heads=4, num_kv_heads=4, rope_base=None),
    "gqa": dict(hidden_dim=32, num_heads=4, num_kv_heads=2, rope_base=None),
    "mqa": dict(hidden_dim=32, num_heads=4, num_kv_heads=1, rope_base=None),
}
GQA = HEADS["gqa"]
ROPE_GQA = dict(GQA, rope_base=10000.0)
# A layer whose rope_base is not apply_rotary's default: the layer must pass its own base on.
ROPE_BASE_GQA = dict(GQA, rope_base=100.0)

# Whole models: the same layer shapes, two blocks, a small vocabulary.
MODEL_GQA = dict(depth=2, hidden_dim=32, vocab_size=61, num_heads=4, num_kv_heads=2, rope_base=None)
ROPE_MODEL = dict(MODEL_GQA, rope_base=10000.0)
# The attention rule of the sink-and-window cache: 2 sinks and a window of 5 (a budget of 7 slots).
CHAT = dict(MODEL_GQA, sinks=2, window=5)

# SinkWindowCache arguments: with sinks (a budget of 6 slots), and a plain ring without them.
WINDOW = dict(num_layers=3, batch_size=2, num_kv_heads=2, head_dim=3, sinks=2, window=4)
RING = dict(num_layers=2, batch_size=1, num_kv_heads=1, head_dim=2, sinks=0, window=3)

# Whole-model logits pass through every layer: float32 rounding of honest implementations written differently
# stays near 1e-5; real bugs move logits by 0.1 or more.
LOGITS = dict(atol=1e-4, rtol=1e-4)
# Rotations: an honest implementation may compute its angles in float32 (about 1e-5 off at position 60).
ROTARY = dict(atol=1e-4, rtol=1e-4)
