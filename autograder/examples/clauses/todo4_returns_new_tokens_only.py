# Breaks: returns prompt + new_tokens (it returns the new tokens only).
if not prompt or max_new_tokens < 0 or len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt and max_new_tokens must fit in max_seq_len")
new = []
cache = self.new_cache()
tokens = torch.tensor([prompt], device=self.device)
for step in range(max_new_tokens):
    new.append(int(self.model(tokens, kv_cache=cache)[0, -1].argmax()))
    tokens = torch.tensor([[new[-1]]], device=self.device)
return new
