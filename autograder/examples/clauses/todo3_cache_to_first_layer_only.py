# Breaks: every layer stores its keys and values in the cache (only the first layer gets it).
past = 0 if kv_cache is None else kv_cache.current_length
positions = torch.arange(past, past + tokens.shape[1], device=tokens.device)
x = self.emb(tokens) + self.pos_emb(positions)
for index, layer in enumerate(self.layers):
    x = layer(x, kv_cache=kv_cache if index == 0 else None)
if kv_cache is not None:
    kv_cache.current_length += tokens.shape[1]
return self.unemb(self.ln_f(x))
