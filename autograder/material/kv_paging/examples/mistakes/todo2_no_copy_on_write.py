# Mistake: no copy on write: a position in a shared block is written in place, under the other holders.
table = self.block_tables[seq_id]
if n < 0:
    raise ValueError(f"cannot append a negative number of positions ({n})")
start = self.lengths[seq_id]
needed = max(0, -(-(start + n) // self.block_size) - len(table))
if needed > self.allocator.num_free():
    raise OutOfBlocks(f"sequence {seq_id} needs {needed} new blocks, {self.allocator.num_free()} are free")
slots = []
for position in range(start, start + n):
    index, offset = divmod(position, self.block_size)
    if index == len(table):
        table.append(self.allocator.allocate(1)[0])
    slots.append(table[index] * self.block_size + offset)
self.lengths[seq_id] = start + n
return slots
