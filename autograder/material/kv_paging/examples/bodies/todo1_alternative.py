# A correct alternative: the free blocks found by a generator, taken one by one after the count is checked.
if n < 0:
    raise ValueError("n must be >= 0")
free_count = sum(1 for count in self.ref_counts if count == 0)
if free_count < n:
    raise OutOfBlocks(f"asked for {n} blocks, only {free_count} free")
taken = []
candidates = (block for block in range(self.num_blocks) if self.ref_counts[block] == 0)
while len(taken) < n:
    block = next(candidates)
    self.ref_counts[block] += 1
    taken.append(block)
return taken
