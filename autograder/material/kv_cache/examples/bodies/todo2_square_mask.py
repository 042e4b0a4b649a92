# Mistake: a square [S, S] causal mask on the rectangular [S, L + S] scores.
q = self.split_heads(self.Wq(x))
k = self.split_heads(self.Wk(x))
v = self.split_heads(self.Wv(x))
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
scores = q @ k.transpose(-2, -1) / self.head_dim ** 0.5
if self.causal:
    new = q.shape[2]
    mask = torch.triu(torch.ones(new, new, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(mask, float("-inf"))
return self.Wo(self.merge_heads(torch.softmax(scores, dim=-1) @ v))
