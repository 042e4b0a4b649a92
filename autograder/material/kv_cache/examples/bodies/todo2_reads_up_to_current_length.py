# Mistake (the seed exercise's slice): after update, K/V are read back from the buffers up to current_length,
# which still counts only the old positions.
q = self.split_heads(self.Wq(x))
k = self.split_heads(self.Wk(x))
v = self.split_heads(self.Wv(x))
past = 0
if kv_cache is not None:
    past = kv_cache.current_length
    kv_cache.update(self.layer_idx, k, v)
    k = kv_cache.keys[self.layer_idx][:, :, :kv_cache.current_length]
    v = kv_cache.values[self.layer_idx][:, :, :kv_cache.current_length]
new = q.shape[2]
mask = torch.ones(new, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=past) if self.causal else None
return self.Wo(self.merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))
