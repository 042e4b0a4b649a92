# Breaks: the new entries go to positions [current_length, current_length + n) (they go to [0, n)).
if not 0 <= layer < self.num_layers:
    raise IndexError(f"layer {layer} is out of range")
if new_keys.shape != new_values.shape or new_keys.dim() != 4 or (new_keys.shape[0], new_keys.shape[1], new_keys.shape[3]) != (self.batch_size, self.num_heads, self.head_dim):
    raise ValueError("bad shape")
n = new_keys.shape[2]
end = self.current_length + n
if end > self.max_seq_len:
    raise CacheOverflowError("full")
self.keys[layer][:, :, :n] = new_keys
self.values[layer][:, :, :n] = new_values
return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]
