# Breaks: returns len(prompt) + max_new_tokens ints (for max_new_tokens = 0 it still adds one token).
if not prompt or max_new_tokens < 0 or len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt and max_new_tokens must fit in max_seq_len")
out = list(prompt)
cache = self.new_cache()
tokens = torch.tensor([prompt], device=self.device)
for step in range(max(1, max_new_tokens)):
    out.append(int(self.model(tokens, kv_cache=cache)[0, -1].argmax()))
    tokens = torch.tensor([[out[-1]]], device=self.device)
return out
