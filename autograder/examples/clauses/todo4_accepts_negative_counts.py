# Breaks: ValueError for a negative max_new_tokens (it returns the prompt).
if not prompt or len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt and max_new_tokens must fit in max_seq_len")
out = list(prompt)
cache = self.new_cache()
tokens = torch.tensor([prompt], device=self.device)
for step in range(max_new_tokens):
    out.append(int(self.model(tokens, kv_cache=cache)[0, -1].argmax()))
    tokens = torch.tensor([[out[-1]]], device=self.device)
return out
