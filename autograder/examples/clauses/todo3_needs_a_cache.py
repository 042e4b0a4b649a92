# Breaks: kv_cache=None means L = 0 (it always reads kv_cache.current_length, so a call without a cache fails).
past = kv_cache.current_length
positions = torch.arange(past, past + tokens.shape[1], device=tokens.device)
x = self.emb(tokens) + self.pos_emb(positions)
for layer in self.layers:
    x = layer(x, kv_cache=kv_cache)
kv_cache.current_length += tokens.shape[1]
return self.unemb(self.ln_f(x))
