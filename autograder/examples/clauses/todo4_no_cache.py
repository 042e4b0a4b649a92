# Breaks: generation uses a KVCache (here the model re-runs the sequence without one).
if not prompt or max_new_tokens < 0 or len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt and max_new_tokens must fit in max_seq_len")
out = list(prompt)
for _ in range(max_new_tokens):
    out.append(int(self.model(torch.tensor([out], device=self.device))[0, -1].argmax()))
return out
