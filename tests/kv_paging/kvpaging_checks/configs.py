"""Small configurations the public checks use (the hidden checks add their own), and the tolerances."""

# A pool small enough to read by eye: 8 blocks of 4 slots, 2 layers, 2 key/value heads of size 2.
POOL = dict(num_blocks=8, block_size=4, num_layers=2, num_kv_heads=2, head_dim=2)
TINY_POOL = dict(num_blocks=5, block_size=2, num_layers=1, num_kv_heads=1, head_dim=2)

# One layer's attention: 4 query heads sharing 2 key/value heads of size 4; a pool of 10 blocks of 4 slots.
HEADS = dict(num_heads=4, num_kv_heads=2, head_dim=4, num_blocks=10, block_size=4)

# Whole models: two blocks, grouped-query attention, rotary positions, a small vocabulary.
MODEL = dict(depth=2, hidden_dim=32, vocab_size=61, num_heads=4, num_kv_heads=2)

# The prefix cache's pool (its data is synthetic: one layer, one head of size 2), blocks of 4 tokens.
PREFIX = dict(num_blocks=10, block_size=4, num_layers=1, num_kv_heads=1, head_dim=2, vocab_size=50)

# The scheduler's scripted model: a vocabulary and a pool of blocks of 4 slots (one layer, one head of size 1).
SCRIPTED = dict(vocab_size=97, block_size=4)

# The int8 cache: 2 layers, 3 key/value heads of size 8, room for 12 positions.
INT8 = dict(num_layers=2, num_kv_heads=3, head_dim=8, max_seq_len=12)

# Whole-model logits pass through every layer: float32 rounding of honest implementations written differently
# stays near 1e-5; real bugs move logits by 0.1 or more.
LOGITS = dict(atol=1e-4, rtol=1e-4)
# One attention layer: the same arithmetic in another order.
ATTENTION = dict(atol=1e-5, rtol=1e-5)
