if len(prompt) == 0 or max_new_tokens < 0 or len(prompt) + max_new_tokens > self.max_seq_len:
    raise ValueError("prompt and max_new_tokens must fit in max_seq_len")
cache = self.new_cache()
result = list(prompt)
feed = torch.tensor(prompt, device=self.device).unsqueeze(0)
while len(result) < len(prompt) + max_new_tokens:
    token = self.model(feed, kv_cache=cache)[:, -1].argmax(dim=-1).item()
    result.append(token)
    feed = torch.tensor([[token]], device=self.device)
return result
