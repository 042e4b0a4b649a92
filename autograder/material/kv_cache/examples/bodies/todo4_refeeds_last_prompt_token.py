# Bug (from the seed exercise): the prefill's logits are thrown away and the last prompt token is fed again.
if len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt + max_new_tokens does not fit in max_seq_len")
cache = self.new_cache(batch_size=1)
self.model(torch.tensor([prompt], device=self.device), kv_cache=cache)
out = list(prompt)
for _ in range(max_new_tokens):
    logits = self.model(torch.tensor([[out[-1]]], device=self.device), kv_cache=cache)
    out.append(int(logits[0, -1].argmax()))
return out
