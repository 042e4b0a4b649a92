# Breaks: ValueError when the tensors differ in shape or do not match the cache (no check at all).
if not 0 <= layer < self.num_layers:
    raise IndexError(f"layer {layer} is out of range")
start, end = self.current_length, self.current_length + new_keys.shape[2]
if end > self.max_seq_len:
    raise CacheOverflowError("full")
self.keys[layer][:, :, start:end] = new_keys
self.values[layer][:, :, start:end] = new_values
return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]
