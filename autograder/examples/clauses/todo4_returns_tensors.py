# Breaks: the result is a list of ints (its new items are 0-d tensors).
if not prompt or max_new_tokens < 0 or len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt and max_new_tokens must fit in max_seq_len")
out = list(prompt)
cache = self.new_cache()
tokens = torch.tensor([prompt], device=self.device)
for step in range(max_new_tokens):
    out.append(self.model(tokens, kv_cache=cache)[0, -1].argmax())
    tokens = out[-1].view(1, 1)
return out
