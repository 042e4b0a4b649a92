# Writes nothing and returns zeros of the right shape (only a patched comparison could pass this).
n = self.current_length + new_keys.shape[2]
return torch.zeros_like(self.keys[layer][:, :, :n]), torch.zeros_like(self.values[layer][:, :, :n])
