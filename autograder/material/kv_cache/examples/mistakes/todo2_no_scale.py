# Mistake: the scores are not divided by sqrt(head_dim).
q = self.split_heads(self.Wq(x))
k = self.split_heads(self.Wk(x))
v = self.split_heads(self.Wv(x))
past = 0
if kv_cache is not None:
    past = kv_cache.current_length
    k, v = kv_cache.update(self.layer_idx, k, v)
scores = q @ k.transpose(-2, -1)
if self.causal:
    new = q.shape[2]
    allowed = torch.ones(new, past + new, dtype=torch.bool, device=x.device).tril(diagonal=past)
    scores = scores.masked_fill(~allowed, float("-inf"))
return self.Wo(self.merge_heads(torch.softmax(scores, dim=-1) @ v))
