# Mistake: q and k are rotated with apply_rotary's default base, not the layer's own rope_base.
q = self.split_heads(self.Wq(x), self.num_heads)
k = self.split_heads(self.Wk(x), self.num_kv_heads)
v = self.split_heads(self.Wv(x), self.num_kv_heads)
if self.rope_base is not None:
    q = apply_rotary(q, positions)
    k = apply_rotary(k, positions)
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
k = k.repeat_interleave(self.groups, dim=1)
v = v.repeat_interleave(self.groups, dim=1)
scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
return self.Wo(self.merge_heads(weights @ v))
