# A correct body written differently: scaled_dot_product_attention, which shares key/value heads itself.
q = self.split_heads(self.Wq(x), self.num_heads)
k = self.split_heads(self.Wk(x), self.num_kv_heads)
v = self.split_heads(self.Wv(x), self.num_kv_heads)
if self.rope_base is not None:
    q = apply_rotary(q, positions, self.rope_base)
    k = apply_rotary(k, positions, self.rope_base)
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
return self.Wo(self.merge_heads(out))
