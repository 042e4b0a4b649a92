# Mistake (the seed exercise's mask): triu(diagonal=1) on the rectangular [S, L + S] scores.
q = self.split_heads(self.Wq(x))
k = self.split_heads(self.Wk(x))
v = self.split_heads(self.Wv(x))
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
scores = q @ k.transpose(-2, -1) / self.head_dim ** 0.5
if self.causal:
    mask = torch.triu(torch.ones(scores.shape[-2], scores.shape[-1], dtype=torch.bool, device=x.device), diagonal=1)
    scores = scores.masked_fill(mask, float("-inf"))
return self.Wo(self.merge_heads(torch.softmax(scores, dim=-1) @ v))
