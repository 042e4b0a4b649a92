# A correct body written differently: checks of its own, and one vectorised write per layer of only the entries that
# survive (index_copy_ into the slots, the latest entry for each slot).
if layer < 0 or layer >= len(self.keys):
    raise IndexError(f"no layer {layer}")
if new_keys.shape != new_values.shape or new_keys.dim() != 4 or new_keys.shape[0] != self.batch_size \
        or new_keys.shape[1] != self.num_kv_heads or new_keys.shape[3] != self.head_dim:
    raise ValueError(f"bad shapes {tuple(new_keys.shape)} / {tuple(new_values.shape)}")
n = new_keys.shape[2]
held = min(self.current_length, self.sinks + self.window)
out_keys = torch.cat([self.keys[layer].narrow(2, 0, held), new_keys], dim=2)
out_values = torch.cat([self.values[layer].narrow(2, 0, held), new_values], dim=2)
latest = {}
for i in range(n):
    latest[self.slot(self.current_length + i)] = i  # a later entry wins its slot
slots = torch.tensor(list(latest.keys()), dtype=torch.long, device=self.device)
entries = torch.tensor(list(latest.values()), dtype=torch.long, device=self.device)
self.keys[layer].index_copy_(2, slots, new_keys.index_select(2, entries))
self.values[layer].index_copy_(2, slots, new_values.index_select(2, entries))
return out_keys, out_values
