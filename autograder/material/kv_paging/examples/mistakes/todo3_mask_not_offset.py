# Mistake: the causal mask is laid over the new tokens as if they started at position 0 (new token i sees keys
# 0 .. i), as triu(diagonal=1) on the [S, T] scores does: a decoding token then sees only the first position.
if not len(block_tables) == len(context_lens) == len(query_lens):
    raise ValueError("block_tables, context_lens and query_lens must be as long")
if sum(query_lens) != query.shape[0]:
    raise ValueError("query_lens must add up to the rows of query")
block_size = key_pool.shape[2]
outputs, start = [], 0
for table, length, count in zip(block_tables, context_lens, query_lens):
    if not 0 <= count <= length or len(table) * block_size < length:
        raise ValueError("the lists do not fit")
    positions = torch.arange(length)
    blocks = torch.tensor(table, dtype=torch.long)[positions // block_size]
    keys = key_pool[blocks, :, positions % block_size]
    values = value_pool[blocks, :, positions % block_size]
    visible = ~torch.ones(count, length, dtype=torch.bool).triu(diagonal=1)
    outputs.append(dense_attention(query[start:start + count], keys, values, visible))
    start += count
return torch.cat(outputs) if outputs else query.clone()
