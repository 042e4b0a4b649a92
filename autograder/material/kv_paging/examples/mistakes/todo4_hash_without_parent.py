# Mistake: each block's key hashes its own tokens only, so the same tokens after another prefix count as the
# same block.
size = self.cache.block_size
if not prompt:
    raise ValueError("a prompt needs at least one token")
if seq_id in self.cache.block_tables:
    raise ValueError(f"sequence {seq_id} is in the cache already")
keys = [block_key(None, prompt[i * size:(i + 1) * size]) for i in range(len(prompt) // size)]
reused = []
for key in keys[:(len(prompt) - 1) // size]:
    if key not in self.table:
        break
    reused.append(self.table[key])
rest = -(-len(prompt) // size) - len(reused)
evictable = sorted((self.stamps[block], -self.depths[block], block) for block in self.table.values()
                   if self.allocator.ref_counts[block] == 1 and block not in reused)
shortfall = max(0, rest - self.allocator.num_free())
if shortfall > len(evictable):
    raise OutOfBlocks(f"a prompt of {len(prompt)} tokens needs {rest} new blocks")
self.clock += 1
self.allocator.share(reused)
for block in reused:
    self.stamps[block] = self.clock
for _stamp, _depth, block in evictable[:shortfall]:
    del self.table[self.block_keys.pop(block)]
    del self.stamps[block], self.depths[block]
    self.allocator.free([block])
self.cache.add_sequence(seq_id, reused + self.allocator.allocate(rest), length=len(reused) * size)
self.pending[seq_id] = keys
return len(reused) * size
