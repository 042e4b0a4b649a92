"""Small configurations the public checks use (the hidden checks use others)."""

CACHE = dict(num_layers=3, batch_size=2, num_heads=3, head_dim=4, max_seq_len=10)
ATTENTION = dict(hidden_dim=32, nheads=4)
MODEL = dict(depth=2, hidden_dim=32, nheads=4, vocab_size=61, max_seq_len=48)

# Whole-model logits pass through every layer: float32 rounding of honest implementations written differently
# reaches about 5e-6 on fresh draws; real bugs move logits by 0.1 or more.
LOGITS = dict(atol=1e-4, rtol=1e-4)
