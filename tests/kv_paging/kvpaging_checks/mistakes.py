"""The known mistakes of part 3, recognised by what they compute, and hints for exceptions known from their kind and
message alone (see :mod:`kvchecks.mistakes`)."""

from __future__ import annotations

from kvchecks.i18n import N_, _
from kvchecks.mistakes import Mistake
from kvchecks.standins import SHOWN_AS

MISTAKES: tuple[Mistake, ...] = (
    Mistake("todo2_slot_one_past", 2, "paged_ops",
            N_("your slots equal a cache that counts positions from 1 (it adds n to lengths before working out the "
               "slots, or takes position L + i + 1): each position lands one slot late and a block is taken one "
               "position early. The new positions are L .. L + n - 1, L the length before the call; position p goes "
               "to slot block_tables[s][p // bs] * bs + p % bs.")),
    Mistake("todo2_no_copy_on_write", 2, "paged_ops",
            N_("your cache writes into a block that another sequence still holds (reference count above 1): that "
               "sequence's keys and values change under it. Before writing a shared block, take a new block, "
               "copy_block(old, new), free([old]) and point the table at the new block (copy on write).")),
    Mistake("todo3_reads_whole_blocks", 3, "attention_run",
            N_("your output equals attention over every slot of the sequence's blocks, len(table) * bs positions: "
               "the slots of its last block past context_lens[b] hold left-overs of earlier sequences. Read positions "
               "0 .. context_lens[b] - 1 only.")),
    Mistake("todo3_mask_not_offset", 3, "attention_run",
            N_("your output equals a causal mask laid over the new tokens as if they started at position 0 (new token "
               "i sees keys 0 .. i): new token i of a sequence is at position context_lens[b] - query_lens[b] + i and "
               "sees every position up to that one, the cached ones included.")),
    Mistake("todo4_hash_without_parent", 4, "prefix_ops",
            N_("your keys equal keys of each block's tokens alone (block_key(None, tokens) for every block): a "
               "block's keys and values depend on every token before it, so the same tokens after another prefix are "
               "another block. Chain the keys: key_i = block_key(key_{i-1}, block i's tokens).")),
    Mistake("todo4_evicted_block_still_in_table", 4, "prefix_ops",
            N_("your prefix cache frees an evicted block but keeps its key in table: a later prompt then finds the "
               "key and reuses a block that the pool has given to another sequence. Evicting removes the block from "
               "table, block_keys, stamps and depths, then frees it.")),
    Mistake("todo5_resumes_with_stale_blocks", 5, "schedule_scripted",
            N_("your preempted request frees its blocks but keeps its block table and computed: when it runs again it "
               "reads blocks the pool has given to other requests. Preempting calls cache.free_sequence (the table "
               "goes too) and sets computed to 0, so the request computes its prompt and output again.")),
    Mistake("todo6_scale_per_tensor", 6, "int8_ops",
            N_("your scales equal one scale for the whole update (the absmax over every new position and head): a "
               "small row then rounds to a few levels, or to zeros. Each row (one position, one head) gets its own "
               "scale, max|x| / 127 over its head_dim numbers.")),
    Mistake("todo6_truncates", 6, "int8_ops",
            N_("your int8 values equal x / s truncated toward zero (.to(torch.int8) or .int() without rounding): the "
               "error is then up to a whole step s, not s / 2. Round to the nearest integer first "
               "((x / s).round()).")),
)


def error_hint(kind: str, message: str, todo: int | None) -> str:
    """A hint for an exception whose cause is known from its kind and message alone, or ``""``."""
    if todo == 5 and kind == "AttributeError" and SHOWN_AS in message:
        return _("the checks of TODO 5 give your scheduler a scripted stand-in model that offers nothing but the call "
                 "the docstring names: self.model(tokens, self.cache, seq_ids).")
    return ""
