# Breaks: the whole prompt goes through the model in one call (here one call per prompt token).
if not prompt or max_new_tokens < 0 or len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt and max_new_tokens must fit in max_seq_len")
out = list(prompt)
if max_new_tokens == 0:
    return out
cache = self.new_cache()
for token in prompt:
    logits = self.model(torch.tensor([[token]], device=self.device), kv_cache=cache)
for step in range(max_new_tokens):
    out.append(int(logits[0, -1].argmax()))
    if step + 1 < max_new_tokens:
        logits = self.model(torch.tensor([[out[-1]]], device=self.device), kv_cache=cache)
return out
