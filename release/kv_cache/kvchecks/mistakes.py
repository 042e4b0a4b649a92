"""Common mistakes recognised by what they compute, and the hint each one earns.

For some probe calls the saved goldens also hold what a package with one
known mistake observes (recorded by ``kvkit goldens`` from the instructors'
``autograder/examples/mistakes/<name>.py``). When a student's observation
differs from the reference's but equals a mistake's, the failure message adds
that mistake's hint, so a hint is only ever shown for the mistake that
produces exactly what the student's code produced.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    name: str  # also the body file autograder/examples/mistakes/<name>.py
    todo: int  # the TODO whose body the mistake replaces
    probe: str  # the probe whose observations reveal it
    hint: str


MISTAKES: dict[str, Mistake] = {
    m.name: m
    for m in (
        Mistake("todo2_no_scale", 2, "attention_steps",
                "your output equals attention whose scores are not divided by sqrt(head_dim): scale q @ k^T by "
                "1 / sqrt(head_dim) before the softmax."),
        Mistake("todo2_mask_not_offset", 2, "attention_steps",
                "your output equals attention in which new token i sees keys 0..i only, as a mask of "
                "triu(ones(S, L + S), diagonal=1) or scaled_dot_product_attention(..., is_causal=True) gives on the "
                "[S, L + S] scores (is_causal aligns its mask with the top-left corner). New token i sits at "
                "position L + i and must see keys 0..L + i: such a mask is wrong whenever L > 0."),
        Mistake("todo2_new_tokens_only", 2, "attention_steps",
                "your output equals attention over the new tokens' own keys and values only: attend over the "
                "(keys, values) that kv_cache.update returns, which hold all L + S positions."),
        Mistake("todo2_no_mask", 2, "attention_steps",
                "your output equals attention with no causal mask: when causal is True, new token i (at position "
                "L + i) may only see keys 0..L + i."),
        Mistake("todo2_mask_ignores_causal_flag", 2, "attention_steps",
                "your output equals causal attention, but this layer was built with causal=False: then every new "
                "token sees all L + S positions, and no mask is applied."),
    )
}


def for_probe(probe: str) -> list[Mistake]:
    return [m for m in MISTAKES.values() if m.probe == probe]


def hint(name: str) -> str:
    return MISTAKES[name].hint
