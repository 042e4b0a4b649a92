# Correct, written differently: a cache sized to this request, inference_mode, topk for the greedy choice.
if len(prompt) == 0:
    raise ValueError("empty prompt")
if max_new_tokens < 0:
    raise ValueError("max_new_tokens < 0")
total = len(prompt) + max_new_tokens
if total > self.max_seq_len:
    raise ValueError("too long for this generator")
result = [int(t) for t in prompt]
if max_new_tokens == 0:
    return result
attn = self.model.layers[0].attn
cache = KVCache(len(self.model.layers), 1, attn.nheads, attn.head_dim, total, device=self.device)
with torch.inference_mode():
    feed = torch.tensor(result, device=self.device).view(1, -1)
    for _ in range(max_new_tokens):
        token = int(torch.topk(self.model(feed, kv_cache=cache)[0, -1], 1).indices[0])
        result.append(token)
        feed = torch.tensor([[token]], device=self.device)
return result
