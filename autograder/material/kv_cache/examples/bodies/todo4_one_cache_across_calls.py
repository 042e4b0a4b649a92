# Mistake: one cache is made once and kept across generate calls, so a second call sees the first one's tokens.
if not prompt or max_new_tokens < 0 or len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt and max_new_tokens must fit in max_seq_len")
if not hasattr(self, "cache"):
    self.cache = self.new_cache()
out = list(prompt)
tokens = torch.tensor([prompt], device=self.device)
for step in range(max_new_tokens):
    out.append(int(self.model(tokens, kv_cache=self.cache)[0, -1].argmax()))
    tokens = torch.tensor([[out[-1]]], device=self.device)
return out
