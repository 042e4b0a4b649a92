batch, seq = tokens.shape
start = kv_cache.current_length if kv_cache is not None else 0
h = self.emb(tokens) + self.pos_emb(torch.arange(seq, device=tokens.device) + start).unsqueeze(0)
for block in self.layers:
    h = block(h, kv_cache=kv_cache)
logits = self.unemb(self.ln_f(h))
if kv_cache is not None:
    kv_cache.current_length = start + seq
return logits
