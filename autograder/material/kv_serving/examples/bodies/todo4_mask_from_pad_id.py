# Breaks: the mask is 1 for each real token (here 0 for every token equal to pad_id, real ones included).
_check_request(prompts, max_new_tokens, self.max_seq_len)
outs = [list(p) for p in prompts]
if max_new_tokens == 0:
    return outs
longest = max(len(p) for p in prompts)
tokens = torch.tensor([[self.pad_id] * (longest - len(p)) + list(p) for p in prompts], dtype=torch.long,
                      device=self.device)
seen = tokens
real = (seen != self.pad_id).long()
positions = (real.cumsum(dim=1) - 1).clamp(min=0)
cache = self.new_cache(len(prompts))
for _ in range(max_new_tokens):
    logits = self.model(tokens, kv_cache=cache, positions=positions, attention_mask=real)
    next_tokens = logits[:, -1].argmax(dim=-1)
    for out, token in zip(outs, next_tokens.tolist()):
        out.append(int(token))
    tokens = next_tokens[:, None]
    positions = real.sum(dim=1, keepdim=True)
    seen = torch.cat([seen, tokens], dim=1)
    real = (seen != self.pad_id).long()
return outs
