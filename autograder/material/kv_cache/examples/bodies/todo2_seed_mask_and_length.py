# Bugs (from the seed exercise): K/V read back only up to current_length (which has not advanced yet),
# and a triu(diagonal=1) mask on the rectangular [S, L + S] scores.
q = self.split_heads(self.Wq(x))
k = self.split_heads(self.Wk(x))
v = self.split_heads(self.Wv(x))
if kv_cache is not None:
    kv_cache.update(self.layer_idx, k, v)
    length = kv_cache.current_length
    k = kv_cache.keys[self.layer_idx][:, :, :length]
    v = kv_cache.values[self.layer_idx][:, :, :length]
scores = q @ k.transpose(-2, -1) / self.head_dim ** 0.5
if self.causal:
    mask = torch.triu(torch.ones_like(scores), diagonal=1).bool()
    scores = scores.masked_fill(mask, float("-inf"))
out = torch.softmax(scores, dim=-1) @ v
return self.Wo(self.merge_heads(out))
