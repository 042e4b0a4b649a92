# A correct alternative: all checks first, one gather of every sequence's slots through index_select, and
# scaled_dot_product_attention with enable_gqa for each sequence.
if len({len(block_tables), len(context_lens), len(query_lens)}) != 1:
    raise ValueError("block_tables, context_lens and query_lens differ in length")
if sum(query_lens) != len(query):
    raise ValueError("query_lens do not add up to the rows of query")
size = key_pool.shape[2]
if any(count < 0 or count > length or length > len(table) * size
       for table, length, count in zip(block_tables, context_lens, query_lens)):
    raise ValueError("a sequence's new tokens, length and table do not fit")
flat_keys = key_pool.permute(0, 2, 1, 3).reshape(-1, key_pool.shape[1], key_pool.shape[3])
flat_values = value_pool.permute(0, 2, 1, 3).reshape(-1, value_pool.shape[1], value_pool.shape[3])
outputs, row = [], 0
for table, length, count in zip(block_tables, context_lens, query_lens):
    slots = torch.tensor([table[t // size] * size + t % size for t in range(length)], dtype=torch.long,
                         device=key_pool.device)
    keys = flat_keys.index_select(0, slots).transpose(0, 1)  # [Hkv, T, hd]
    values = flat_values.index_select(0, slots).transpose(0, 1)
    mine = query[row:row + count].transpose(0, 1)  # [H, S, hd]
    allowed = torch.ones(count, length, dtype=torch.bool, device=query.device).tril(diagonal=length - count)
    out = torch.nn.functional.scaled_dot_product_attention(mine, keys, values, attn_mask=allowed, enable_gqa=True)
    outputs.append(out.transpose(0, 1))
    row += count
return torch.cat(outputs, dim=0) if outputs else torch.empty_like(query)
