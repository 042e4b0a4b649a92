# A correct alternative: a boolean mask, the padded batch filled row by row, positions from a per-row count of real
# tokens, and no state update after the last step.
_check_request(prompts, max_new_tokens, self.max_seq_len)
results = [list(p) for p in prompts]
if max_new_tokens == 0:
    return results
lengths = torch.tensor([len(p) for p in prompts], device=self.device)
width = int(lengths.max())
columns = torch.arange(width, device=self.device)[None, :]
starts = (width - lengths)[:, None]
mask = columns >= starts
batch = torch.full((len(prompts), width), self.pad_id, dtype=torch.long, device=self.device)
for row, prompt in enumerate(prompts):
    batch[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long, device=self.device)
positions = torch.where(mask, columns - starts, torch.zeros_like(columns))
cache = self.new_cache(batch_size=len(prompts))
count = lengths.clone()
for step in range(max_new_tokens):
    logits = self.model(batch, kv_cache=cache, positions=positions, attention_mask=mask)
    chosen = logits[:, -1, :].argmax(dim=-1)
    for row, token in enumerate(chosen.tolist()):
        results[row].append(token)
    if step == max_new_tokens - 1:
        break
    batch = chosen.unsqueeze(1)
    positions = count.unsqueeze(1)
    count = count + 1
    mask = torch.cat([mask, torch.ones(len(prompts), 1, dtype=torch.bool, device=self.device)], dim=1)
return results
