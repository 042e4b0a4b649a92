"""``kvkit generate --hf PATH``: greedy generation with a kit ``Transformer`` holding local GPT-2 weights."""

from __future__ import annotations

from pathlib import Path

import torch

from kvkit.errors import UsageError
from .hf import from_gpt2, load_pretrained
from kvkit.impl import add_impl_argument, opened_impl

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


def add_parser(sub) -> None:
    parser = sub.add_parser(
        "generate",
        help="generate greedily from a local GPT-2 checkpoint with the kit's KV cache",
        description="Load a local GPT-2 checkpoint folder (save_pretrained layout; nothing is downloaded) into "
        "kvcache.Transformer and extend a prompt greedily with TransformerGenerator.",
    )
    parser.add_argument("--hf", required=True, metavar="PATH", help="local GPT-2 checkpoint folder")
    prompt = parser.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt-ids", metavar="IDS", help="comma-separated token ids, e.g. 1,2,3")
    prompt.add_argument("--text", help="prompt text, encoded with the tokenizer saved in the checkpoint folder")
    parser.add_argument("--max-new-tokens", type=int, default=20, metavar="N", help="tokens to add (default 20)")
    add_impl_argument(parser)
    parser.set_defaults(func=run)


def _parse_ids(text: str, vocab_size: int) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``, each checked to be a token id of the model."""
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise UsageError(f"--prompt-ids {text!r} is not a comma-separated list of integers, e.g. 1,2,3") from err
    if not ids:
        raise UsageError("--prompt-ids is empty: give at least one token id, e.g. 1,2,3")
    bad = [i for i in ids if not 0 <= i < vocab_size]
    if bad:
        raise UsageError(f"token ids {bad} are outside this model's vocabulary 0..{vocab_size - 1}")
    return ids


def _tokenizer(path: str):
    """The tokenizer saved in the checkpoint folder, or None when there is none."""
    from transformers import AutoTokenizer

    if not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
        return None
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def run(args) -> int:
    hf_model = load_pretrained(args.hf)
    tokenizer = _tokenizer(args.hf)
    with opened_impl(args.layout, args.impl) as impl, torch.inference_mode():
        model = from_gpt2(impl.module, hf_model)
        prompt = _prompt(args, tokenizer, model)
        out = impl.module.TransformerGenerator(model, max_seq_len=len(prompt) + args.max_new_tokens).generate(
            prompt, args.max_new_tokens
        )
    print("ids:", ",".join(map(str, out)))
    if tokenizer is not None:
        print("text:", tokenizer.decode(out))
    return 0


def _prompt(args, tokenizer, model) -> list[int]:
    """The prompt's token ids, checked against the model's vocabulary and positions."""
    if args.text is not None:
        if tokenizer is None:
            raise UsageError(f"{args.hf} holds no tokenizer: use --prompt-ids, or save a tokenizer into that folder")
        prompt = tokenizer.encode(args.text)
        if not prompt:
            raise UsageError(f"--text {args.text!r} encodes to no tokens: give some text")
    else:
        prompt = _parse_ids(args.prompt_ids, model.vocab_size)
    if args.max_new_tokens < 0:
        raise UsageError(f"--max-new-tokens must be >= 0, got {args.max_new_tokens}")
    if len(prompt) + args.max_new_tokens > model.max_seq_len:
        raise UsageError(
            f"prompt ({len(prompt)}) + --max-new-tokens ({args.max_new_tokens}) exceeds the model's "
            f"{model.max_seq_len} positions; shorten one of them"
        )
    return prompt
