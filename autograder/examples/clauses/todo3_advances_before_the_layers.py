# Breaks: current_length advances after the last layer has written (it advances before the layers run).
past = 0 if kv_cache is None else kv_cache.current_length
positions = torch.arange(past, past + tokens.shape[1], device=tokens.device)
x = self.emb(tokens) + self.pos_emb(positions)
if kv_cache is not None:
    kv_cache.current_length += tokens.shape[1]
for layer in self.layers:
    x = layer(x, kv_cache=kv_cache)
return self.unemb(self.ln_f(x))
