# Mistake: the new keys and values are stored, but attention uses only the new tokens' own k and v.
q = self.split_heads(self.Wq(x))
k = self.split_heads(self.Wk(x))
v = self.split_heads(self.Wv(x))
if kv_cache is not None:
    kv_cache.update(self.layer_idx, k, v)
out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal and q.shape[2] > 1)
return self.Wo(self.merge_heads(out))
