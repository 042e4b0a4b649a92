# Mistake: current_length advances inside the layer loop, so later layers see a length that includes the new tokens.
past = 0 if kv_cache is None else kv_cache.current_length
positions = torch.arange(past, past + tokens.shape[1], device=tokens.device)
x = self.emb(tokens) + self.pos_emb(positions)
for layer in self.layers:
    x = layer(x, kv_cache=kv_cache)
    if kv_cache is not None:
        kv_cache.current_length += tokens.shape[1]
if kv_cache is not None:
    kv_cache.current_length = past + tokens.shape[1]
return self.unemb(self.ln_f(x))
