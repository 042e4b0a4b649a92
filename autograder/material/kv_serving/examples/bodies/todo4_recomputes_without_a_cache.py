# Breaks: one prefill, then [B, 1] calls on a cache (here no cache: every step re-runs the whole padded batch).
_check_request(prompts, max_new_tokens, self.max_seq_len)
outs = [list(p) for p in prompts]
if max_new_tokens == 0:
    return outs
longest = max(len(p) for p in prompts)
rows = [[self.pad_id] * (longest - len(p)) + list(p) for p in prompts]
real = torch.tensor([[0] * (longest - len(p)) + [1] * len(p) for p in prompts], device=self.device)
tokens = torch.tensor(rows, dtype=torch.long, device=self.device)
positions = (real.cumsum(dim=1) - 1).clamp(min=0)
for _ in range(max_new_tokens):
    logits = self.model(tokens, positions=positions, attention_mask=real)
    next_tokens = logits[:, -1].argmax(dim=-1)
    for out, token in zip(outs, next_tokens.tolist()):
        out.append(int(token))
    tokens = torch.cat([tokens, next_tokens[:, None]], dim=1)
    positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
    real = torch.cat([real, torch.ones_like(real[:, :1])], dim=1)
return outs
