# Correct, written differently: an additive -inf mask for scaled_dot_product_attention, is_causal when nothing is cached.
q, k, v = (self.split_heads(proj(x)) for proj in (self.Wq, self.Wk, self.Wv))
cached = kv_cache.current_length if kv_cache is not None else 0
if kv_cache is not None:
    k, v = kv_cache.update(self.layer_idx, k, v)
if not self.causal:
    out = F.scaled_dot_product_attention(q, k, v)
elif cached == 0:
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
else:
    rows = torch.arange(q.shape[2], device=x.device).unsqueeze(1) + cached
    cols = torch.arange(k.shape[2], device=x.device).unsqueeze(0)
    bias = torch.zeros(rows.shape[0], cols.shape[1], device=x.device, dtype=q.dtype)
    bias = bias.masked_fill(cols > rows, float("-inf"))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
return self.Wo(self.merge_heads(out))
