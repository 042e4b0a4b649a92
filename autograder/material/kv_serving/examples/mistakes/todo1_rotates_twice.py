# Mistake: the keys the cache returns are rotated once more (at their sequence index), though the cache stored them
# rotated already.
q = self.split_heads(self.Wq(x), self.num_heads)
k = self.split_heads(self.Wk(x), self.num_kv_heads)
v = self.split_heads(self.Wv(x), self.num_kv_heads)
if self.rope_base is not None:
    q = apply_rotary(q, positions, self.rope_base)
    k = apply_rotary(k, positions, self.rope_base)
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
    if self.rope_base is not None:
        every = torch.arange(k.shape[2], device=x.device).expand(x.shape[0], -1)
        k = apply_rotary(k, every, self.rope_base)
k = k.repeat_interleave(self.groups, dim=1)
v = v.repeat_interleave(self.groups, dim=1)
scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
return self.Wo(self.merge_heads(weights @ v))
