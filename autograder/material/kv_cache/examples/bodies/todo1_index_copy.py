# Correct, written differently: validation first, index_copy_ into the buffers, views by narrow.
if layer not in range(self.num_layers):
    raise IndexError(f"no layer {layer} in a cache of {self.num_layers}")
if new_keys.dim() != 4 or new_keys.shape != new_values.shape:
    raise ValueError("keys and values must be equal [B, H, n, head_dim] tensors")
if tuple(new_keys.shape[:2]) + (new_keys.shape[3],) != (self.batch_size, self.num_heads, self.head_dim):
    raise ValueError("keys do not fit this cache")
count = new_keys.shape[2]
if self.current_length + count > self.max_seq_len:
    raise CacheOverflowError(f"{count} more positions do not fit")
where = torch.arange(self.current_length, self.current_length + count, device=self.device)
self.keys[layer].index_copy_(2, where, new_keys)
self.values[layer].index_copy_(2, where, new_values)
filled = self.current_length + count
return self.keys[layer].narrow(2, 0, filled), self.values[layer].narrow(2, 0, filled)
