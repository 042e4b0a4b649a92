# Mistake: the ring keeps window - 1 positions (the new token counted in the window), so each position is evicted
# one step early and the last slot is never written.
_check_layer_and_shapes(self, layer, new_keys, new_values)
held = self.stored()
keys = torch.cat([self.keys[layer][:, :, :held], new_keys], dim=2)
values = torch.cat([self.values[layer][:, :, :held], new_values], dim=2)
for i in range(new_keys.shape[2]):
    t = self.current_length + i
    slot = t if t < self.sinks else self.sinks + (t - self.sinks) % (self.window - 1)
    self.keys[layer][:, :, slot] = new_keys[:, :, i]
    self.values[layer][:, :, slot] = new_values[:, :, i]
return keys, values
