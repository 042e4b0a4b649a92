"""Part 1's known mistakes: each one's body is ``autograder/material/kv_cache/examples/mistakes/<name>.py``."""

from kvchecks.i18n import N_
from kvchecks.mistakes import Mistake

MISTAKES = (
    Mistake("todo2_no_scale", 2, "attention_steps",
            N_("your output equals attention whose scores are not divided by sqrt(head_dim): scale q @ k^T by "
               "1 / sqrt(head_dim) before the softmax.")),
    Mistake("todo2_mask_not_offset", 2, "attention_steps",
            N_("your output equals attention in which new token i sees keys 0..i only, as a mask of "
               "triu(ones(S, L + S), diagonal=1) or scaled_dot_product_attention(..., is_causal=True) gives on the "
               "[S, L + S] scores (is_causal aligns its mask with the top-left corner). New token i sits at "
               "position L + i and must see keys 0..L + i: such a mask is wrong whenever L > 0.")),
    Mistake("todo2_new_tokens_only", 2, "attention_steps",
            N_("your output equals attention over the new tokens' own keys and values only: attend over the "
               "(keys, values) that kv_cache.update returns, which hold all L + S positions.")),
    Mistake("todo2_no_mask", 2, "attention_steps",
            N_("your output equals attention with no causal mask: when causal is True, new token i (at position "
               "L + i) may only see keys 0..L + i.")),
    Mistake("todo2_mask_ignores_causal_flag", 2, "attention_steps",
            N_("your output equals causal attention, but this layer was built with causal=False: then every new "
               "token sees all L + S positions, and no mask is applied.")),
)
