# Mistake: position ids always start at 0, also when the cache already holds earlier positions.
positions = torch.arange(tokens.shape[1], device=tokens.device)
x = self.emb(tokens) + self.pos_emb(positions)
for layer in self.layers:
    x = layer(x, kv_cache=kv_cache)
if kv_cache is not None:
    kv_cache.current_length += tokens.shape[1]
return self.unemb(self.ln_f(x))
