# Mistake: the scores are not divided by sqrt(head_dim).
q = self.split_heads(self.Wq(x), self.num_heads)
k = self.split_heads(self.Wk(x), self.num_kv_heads)
v = self.split_heads(self.Wv(x), self.num_kv_heads)
if self.rope_base is not None:
    q = apply_rotary(q, positions, self.rope_base)
    k = apply_rotary(k, positions, self.rope_base)
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
k = k.repeat_interleave(self.groups, dim=1)
v = v.repeat_interleave(self.groups, dim=1)
scores = (q @ k.transpose(-2, -1)).masked_fill(~mask, float("-inf"))
return self.Wo(self.merge_heads(scores.softmax(dim=-1) @ v))
