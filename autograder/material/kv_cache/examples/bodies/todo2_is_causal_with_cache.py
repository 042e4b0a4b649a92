# Mistake: is_causal=True on the cached keys (its mask is aligned to the top-left of the [S, L + S] scores).
q = self.split_heads(self.Wq(x))
k = self.split_heads(self.Wk(x))
v = self.split_heads(self.Wv(x))
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
return self.Wo(self.merge_heads(out))
