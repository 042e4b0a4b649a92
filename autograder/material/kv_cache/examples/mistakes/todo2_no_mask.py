# Mistake: no causal mask at all.
q = self.split_heads(self.Wq(x))
k = self.split_heads(self.Wk(x))
v = self.split_heads(self.Wv(x))
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
return self.Wo(self.merge_heads(F.scaled_dot_product_attention(q, k, v)))
