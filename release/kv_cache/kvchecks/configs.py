"""Small configurations the public checks use (the hidden checks use others)."""

CACHE = dict(num_layers=3, batch_size=2, num_heads=3, head_dim=4, max_seq_len=10)
ATTENTION = dict(hidden_dim=32, nheads=4)
MODEL = dict(depth=2, hidden_dim=32, nheads=4, vocab_size=61, max_seq_len=48)
