# Mistake: the ring is indexed by t % window, so position t >= sinks goes to slot sinks + t % window instead of
# sinks + (t - sinks) % window.
_check_layer_and_shapes(self, layer, new_keys, new_values)
held = self.stored()
keys = torch.cat([self.keys[layer][:, :, :held], new_keys], dim=2)
values = torch.cat([self.values[layer][:, :, :held], new_values], dim=2)
for i in range(new_keys.shape[2]):
    t = self.current_length + i
    slot = t if t < self.sinks else self.sinks + t % self.window
    self.keys[layer][:, :, slot] = new_keys[:, :, i]
    self.values[layer][:, :, slot] = new_values[:, :, i]
return keys, values
