# Breaks: IndexError for a layer outside 0 <= layer < num_layers (a negative layer wraps around to the last one).
if layer >= self.num_layers:
    raise IndexError(f"layer {layer} is out of range")
if new_keys.shape != new_values.shape or new_keys.dim() != 4 or (new_keys.shape[0], new_keys.shape[1], new_keys.shape[3]) != (self.batch_size, self.num_heads, self.head_dim):
    raise ValueError("bad shape")
start, end = self.current_length, self.current_length + new_keys.shape[2]
if end > self.max_seq_len:
    raise CacheOverflowError("full")
self.keys[layer][:, :, start:end] = new_keys
self.values[layer][:, :, start:end] = new_values
return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]
