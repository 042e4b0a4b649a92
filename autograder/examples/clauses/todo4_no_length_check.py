# Breaks: ValueError when len(prompt) + max_new_tokens exceeds max_seq_len (the cache overflows instead).
if not prompt or max_new_tokens < 0:
    raise ValueError("prompt must not be empty, max_new_tokens not negative")
out = list(prompt)
cache = self.new_cache()
tokens = torch.tensor([prompt], device=self.device)
for step in range(max_new_tokens):
    out.append(int(self.model(tokens, kv_cache=cache)[0, -1].argmax()))
    tokens = torch.tensor([[out[-1]]], device=self.device)
return out
