# Breaks: each later call feeds only the token chosen just before it (it feeds the whole sequence, without a cache).
if not prompt or max_new_tokens < 0 or len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt and max_new_tokens must fit in max_seq_len")
out = list(prompt)
cache = self.new_cache()
logits = self.model(torch.tensor([out], device=self.device), kv_cache=cache) if max_new_tokens else None
for step in range(max_new_tokens):
    out.append(int(logits[0, -1].argmax()))
    if step + 1 < max_new_tokens:
        logits = self.model(torch.tensor([out], device=self.device))
return out
