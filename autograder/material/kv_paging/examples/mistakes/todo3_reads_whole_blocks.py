# Mistake: every slot of the sequence's blocks is read, and the new tokens are taken to be the last query_lens[b] of
# them: the slots past context_lens[b] in the last block (left-overs of earlier sequences) are attended to.
if not len(block_tables) == len(context_lens) == len(query_lens):
    raise ValueError("block_tables, context_lens and query_lens must be as long")
if sum(query_lens) != query.shape[0]:
    raise ValueError("query_lens must add up to the rows of query")
block_size = key_pool.shape[2]
outputs, start = [], 0
for table, length, count in zip(block_tables, context_lens, query_lens):
    if not 0 <= count <= length or len(table) * block_size < length:
        raise ValueError("the lists do not fit")
    blocks = torch.tensor(table, dtype=torch.long)
    keys = key_pool[blocks].transpose(1, 2).reshape(-1, key_pool.shape[1], key_pool.shape[3])
    values = value_pool[blocks].transpose(1, 2).reshape(-1, value_pool.shape[1], value_pool.shape[3])
    total = keys.shape[0]
    visible = torch.arange(total)[None, :] <= torch.arange(total - count, total)[:, None]
    outputs.append(dense_attention(query[start:start + count], keys, values, visible))
    start += count
return torch.cat(outputs) if outputs else query.clone()
