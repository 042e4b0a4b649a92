# Mistake: the length grows before the slots are worked out, so the new positions are counted from L + 1: each
# position lands one slot late and a block is taken one position early.
table = self.block_tables[seq_id]
if n < 0:
    raise ValueError(f"cannot append a negative number of positions ({n})")
needed = self.blocks_needed(seq_id, n)
if needed > self.allocator.num_free():
    raise OutOfBlocks(f"sequence {seq_id} needs {needed} new blocks, {self.allocator.num_free()} are free")
self.lengths[seq_id] += n
slots = []
for position in range(self.lengths[seq_id] - n + 1, self.lengths[seq_id] + 1):
    index, offset = divmod(position, self.block_size)
    if index == len(table):
        table.append(self.allocator.allocate(1)[0])
    elif self.allocator.ref_counts[table[index]] > 1:
        old, new = table[index], self.allocator.allocate(1)[0]
        self.allocator.copy_block(old, new)
        self.allocator.free([old])
        table[index] = new
    slots.append(table[index] * self.block_size + offset)
return slots
