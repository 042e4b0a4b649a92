# Bug: positions are right, but current_length is never advanced.
past = 0 if kv_cache is None else kv_cache.current_length
positions = torch.arange(past, past + tokens.shape[1], device=tokens.device)
x = self.emb(tokens) + self.pos_emb(positions)
for layer in self.layers:
    x = layer(x, kv_cache=kv_cache)
return self.unemb(self.ln_f(x))
