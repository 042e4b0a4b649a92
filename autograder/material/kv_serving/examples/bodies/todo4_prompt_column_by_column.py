# Breaks: one prefill call on the [B, P] batch (here the padded prompts go in one column per call).
_check_request(prompts, max_new_tokens, self.max_seq_len)
outs = [list(p) for p in prompts]
if max_new_tokens == 0:
    return outs
longest = max(len(p) for p in prompts)
rows = [[self.pad_id] * (longest - len(p)) + list(p) for p in prompts]
real = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts], device=self.device)
tokens = torch.tensor(rows, dtype=torch.long, device=self.device)
positions = (real.cumsum(dim=1) - 1).clamp(min=0)
cache = self.new_cache(len(prompts))
for column in range(longest):
    logits = self.model(tokens[:, column:column + 1], kv_cache=cache, positions=positions[:, column:column + 1],
                        attention_mask=real[:, :column + 1])
position = positions[:, -1:]
for step in range(max_new_tokens):
    next_tokens = logits[:, -1].argmax(dim=-1)
    for out, token in zip(outs, next_tokens.tolist()):
        out.append(int(token))
    if step == max_new_tokens - 1:
        break
    position = position + 1
    real = torch.cat([real, torch.ones_like(real[:, :1])], dim=1)
    logits = self.model(next_tokens[:, None], kv_cache=cache, positions=position, attention_mask=real)
return outs
