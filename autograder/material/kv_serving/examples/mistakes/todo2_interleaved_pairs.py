# Mistake: the interleaved layout of GPT-J: pair i is (x[..., 2i], x[..., 2i + 1]), not (x[..., i], x[..., i + hd/2]).
batch, _, seq, head_dim = x.shape
if head_dim % 2:
    raise ValueError(f"rotary embeddings need an even head size, got {head_dim}")
if tuple(positions.shape) != (batch, seq):
    raise ValueError(f"positions must be [B={batch}, S={seq}], got {tuple(positions.shape)}")
inverse = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
angles = positions.to(torch.float64)[:, None, :, None] * inverse
cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
even, odd = x[..., 0::2], x[..., 1::2]
return torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1).flatten(-2)
