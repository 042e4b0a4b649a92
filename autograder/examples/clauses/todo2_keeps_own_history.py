# Breaks: attends over the keys and values that kv_cache.update returns (it keeps its own history of inputs and
# projects all of it again at every call).
if kv_cache is not None:
    if kv_cache.current_length == 0 or not hasattr(self, "_seen"):
        self._seen = x
    else:
        self._seen = torch.cat([self._seen, x], dim=1)
    past = self._seen.shape[1] - x.shape[1]
    k = self.split_heads(self.Wk(self._seen))
    v = self.split_heads(self.Wv(self._seen))
    kv_cache.update(self.layer_idx, k[:, :, past:], v[:, :, past:])
else:
    past = 0
    k = self.split_heads(self.Wk(x))
    v = self.split_heads(self.Wv(x))
q = self.split_heads(self.Wq(x))
new = q.shape[2]
mask = torch.ones(new, past + new, dtype=torch.bool, device=x.device).tril(diagonal=past) if self.causal else None
return self.Wo(self.merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))
