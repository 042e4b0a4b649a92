# A correct alternative: the keys computed while matching, eviction by repeated min() over what may go.
if len(prompt) == 0:
    raise ValueError("empty prompt")
if seq_id in self.cache.lengths:
    raise ValueError(f"sequence {seq_id} exists")
size = self.cache.block_size
keys, key = [], None
for start in range(0, len(prompt) - size + 1, size):
    key = block_key(key, prompt[start:start + size])
    keys.append(key)
limit = (len(prompt) - 1) // size
reused = []
while len(reused) < limit and keys[len(reused)] in self.table:
    reused.append(self.table[keys[len(reused)]])
rest = (len(prompt) + size - 1) // size - len(reused)
candidates = [b for b in self.table.values() if self.allocator.ref_counts[b] == 1 and b not in reused]
if self.allocator.num_free() + len(candidates) < rest:
    raise OutOfBlocks("the pool cannot hold this prompt")
self.clock += 1
for block in reused:
    self.allocator.share([block])
    self.stamps[block] = self.clock
while self.allocator.num_free() < rest:
    victim = min(candidates, key=lambda b: (self.stamps[b], -self.depths[b]))
    candidates.remove(victim)
    self.table.pop(self.block_keys.pop(victim))
    self.stamps.pop(victim)
    self.depths.pop(victim)
    self.allocator.free([victim])
self.cache.add_sequence(seq_id, reused + self.allocator.allocate(rest), length=len(reused) * size)
self.pending[seq_id] = keys
return len(reused) * size
