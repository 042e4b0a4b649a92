# Mistake: the cache grows with torch.cat, so every step allocates new tensors (the buffers are replaced).
if not 0 <= layer < self.num_layers:
    raise IndexError(f"no layer {layer}")
start = self.current_length
if start + new_keys.shape[2] > self.max_seq_len:
    raise CacheOverflowError("full")
self.keys[layer] = torch.cat([self.keys[layer][:, :, :start], new_keys], dim=2)
self.values[layer] = torch.cat([self.values[layer][:, :, :start], new_values], dim=2)
return self.keys[layer], self.values[layer]
