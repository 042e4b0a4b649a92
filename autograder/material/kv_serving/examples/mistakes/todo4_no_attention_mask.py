# Mistake: no attention_mask, so the padded rows attend to their padding (the positions are right).
_check_request(prompts, max_new_tokens, self.max_seq_len)
outs = [list(p) for p in prompts]
if max_new_tokens == 0:
    return outs
longest = max(len(p) for p in prompts)
tokens = torch.tensor([[self.pad_id] * (longest - len(p)) + list(p) for p in prompts], dtype=torch.long,
                      device=self.device)
positions = torch.tensor([[0] * (longest - len(p)) + list(range(len(p))) for p in prompts], device=self.device)
cache = self.new_cache(len(prompts))
for _ in range(max_new_tokens):
    logits = self.model(tokens, kv_cache=cache, positions=positions)
    next_tokens = logits[:, -1].argmax(dim=-1)
    for out, token in zip(outs, next_tokens.tolist()):
        out.append(token)
    tokens = next_tokens[:, None]
    positions = positions[:, -1:] + 1
return outs
