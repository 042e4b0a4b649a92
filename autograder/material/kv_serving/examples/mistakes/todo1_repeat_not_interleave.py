# Mistake: the key/value heads are expanded with repeat, so query head h uses key/value head h % num_kv_heads
# (the heads of a group must be consecutive: h // G).
batch, seq, _ = x.shape
q = self.Wq(x).view(batch, seq, self.num_heads, self.head_dim).transpose(1, 2)
k = self.Wk(x).view(batch, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
v = self.Wv(x).view(batch, seq, self.num_kv_heads, self.head_dim).transpose(1, 2)
if self.rope_base is not None:
    q = apply_rotary(q, positions, self.rope_base)
    k = apply_rotary(k, positions, self.rope_base)
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
k = k.repeat(1, self.groups, 1, 1)
v = v.repeat(1, self.groups, 1, 1)
scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
scores = scores.masked_fill(~mask, float("-inf"))
out = torch.softmax(scores, dim=-1) @ v
return self.Wo(out.transpose(1, 2).reshape(batch, seq, -1))
