# A correct body written differently (as Llama in transformers): float32 frequencies, cos and sin over the whole head,
# and rotate_half.
batch, _, seq, head_dim = x.shape
if head_dim % 2 == 1:
    raise ValueError("odd head size")
if positions.dim() != 2 or positions.shape[0] != batch or positions.shape[1] != seq:
    raise ValueError("positions must be [B, S]")
inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=x.device).float() / head_dim))
freqs = positions[:, :, None].float() * inv_freq  # [B, S, hd/2]
emb = torch.cat([freqs, freqs], dim=-1)[:, None]  # [B, 1, S, hd]
rotated = torch.cat([-x[..., head_dim // 2:], x[..., :head_dim // 2]], dim=-1)
return (x.float() * emb.cos() + rotated.float() * emb.sin()).to(x.dtype)
