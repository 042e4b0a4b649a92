# Mistake: positions are the sequence indices of the padded rows (arange), so they count the padding.
_check_request(prompts, max_new_tokens, self.max_seq_len)
outs = [list(p) for p in prompts]
if max_new_tokens == 0:
    return outs
longest = max(len(p) for p in prompts)
tokens = torch.tensor([[self.pad_id] * (longest - len(p)) + list(p) for p in prompts], dtype=torch.long,
                      device=self.device)
starts = torch.tensor([longest - len(p) for p in prompts], device=self.device)
mask = (torch.arange(longest, device=self.device)[None, :] >= starts[:, None]).long()
positions = torch.arange(longest, device=self.device).expand(len(prompts), longest)
cache = self.new_cache(len(prompts))
for _ in range(max_new_tokens):
    logits = self.model(tokens, kv_cache=cache, positions=positions, attention_mask=mask)
    next_tokens = logits[:, -1].argmax(dim=-1)
    for out, token in zip(outs, next_tokens.tolist()):
        out.append(token)
    tokens = next_tokens[:, None]
    positions = positions[:, -1:] + 1
    mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
return outs
