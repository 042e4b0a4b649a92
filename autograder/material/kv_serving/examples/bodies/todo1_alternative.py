# A correct body written differently: query heads grouped by a view instead of expanding k and v, einsum, an
# additive mask and an explicit softmax.
batch, seq, _ = x.shape
q = self.Wq(x).view(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)
k = self.Wk(x).view(batch, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
v = self.Wv(x).view(batch, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
if self.rope_base is not None:
    q, k = apply_rotary(q, positions, self.rope_base), apply_rotary(k, positions, self.rope_base)
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
grouped = q.reshape(batch, self.num_kv_heads, self.groups, seq, self.head_dim)  # query head h = (h // G, h % G)
scores = torch.einsum("bkgsd,bktd->bkgst", grouped, k) * self.head_dim ** -0.5
bias = torch.zeros(mask.shape, dtype=scores.dtype, device=x.device).masked_fill(~mask, float("-inf"))
scores = scores + bias[:, :, None]  # [B or 1, 1, 1, S, T]
weights = (scores - scores.amax(dim=-1, keepdim=True)).exp()
weights = weights / weights.sum(dim=-1, keepdim=True)
out = torch.einsum("bkgst,bktd->bkgsd", weights, v).reshape(batch, self.num_heads, seq, self.head_dim)
return self.Wo(out.transpose(1, 2).reshape(batch, seq, -1))
