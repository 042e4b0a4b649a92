# Mistake: the offset causal mask is applied even when the layer was built with causal=False.
q = self.split_heads(self.Wq(x))
k = self.split_heads(self.Wk(x))
v = self.split_heads(self.Wv(x))
past = 0
if kv_cache is not None:
    past = kv_cache.current_length
    k, v = kv_cache.update(self.layer_idx, k, v)
new = q.shape[2]
mask = torch.ones(new, past + new, dtype=torch.bool, device=x.device).tril(diagonal=past)
return self.Wo(self.merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))
