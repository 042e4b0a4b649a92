batch, seq, _ = x.shape
q = self.Wq(x).view(batch, seq, self.nheads, self.head_dim).transpose(1, 2)
k = self.Wk(x).view(batch, seq, self.nheads, self.head_dim).transpose(1, 2)
v = self.Wv(x).view(batch, seq, self.nheads, self.head_dim).transpose(1, 2)
offset = 0
if kv_cache is not None:
    offset = kv_cache.current_length
    k, v = kv_cache.update(self.layer_idx, k, v)
scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / self.head_dim ** 0.5
if self.causal:
    query_pos = torch.arange(seq).unsqueeze(1) + offset
    key_pos = torch.arange(k.shape[2]).unsqueeze(0)
    scores = scores.masked_fill(key_pos > query_pos, float("-inf"))
weights = torch.softmax(scores, dim=-1)
out = torch.einsum("bhqk,bhkd->bhqd", weights, v)
return self.Wo(out.transpose(1, 2).reshape(batch, seq, -1))
