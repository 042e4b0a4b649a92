start, count = self.current_length, new_keys.size(2)
if layer < 0 or layer >= len(self.keys):
    raise IndexError(f"no layer {layer}")
buffer_k, buffer_v = self.keys[layer], self.values[layer]
if new_values.size() != new_keys.size() or new_keys.dim() != 4:
    raise ValueError("keys and values must both be [B, H, n, head_dim]")
if new_keys.size(0) != buffer_k.size(0) or new_keys.size(1) != buffer_k.size(1) or new_keys.size(3) != buffer_k.size(3):
    raise ValueError("batch, heads or head_dim do not match the cache")
if start + count > buffer_k.size(2):
    raise CacheOverflowError("cache full")
buffer_k.narrow(2, start, count).copy_(new_keys)
buffer_v.narrow(2, start, count).copy_(new_values)
return buffer_k.narrow(2, 0, start + count), buffer_v.narrow(2, 0, start + count)
