# A correct alternative: the blocks the call needs are counted and taken at once, then handed out in position order.
if n < 0:
    raise ValueError(f"n must be >= 0, got {n}")
table = self.block_tables[seq_id]
size, start = self.block_size, self.lengths[seq_id]
if n == 0:
    return []
first, last = start // size, (start + n - 1) // size
shared = [index for index in range(first, min(last + 1, len(table))) if self.allocator.ref_counts[table[index]] > 1]
extra = max(0, last + 1 - len(table))
fresh = iter(self.allocator.allocate(len(shared) + extra))  # raises OutOfBlocks before anything changed
for index in range(first, last + 1):
    if index >= len(table):
        table.append(next(fresh))
    elif index in shared:
        copy = next(fresh)
        self.allocator.copy_block(table[index], copy)
        self.allocator.free([table[index]])
        table[index] = copy
self.lengths[seq_id] = start + n
return [table[p // size] * size + p % size for p in range(start, start + n)]
