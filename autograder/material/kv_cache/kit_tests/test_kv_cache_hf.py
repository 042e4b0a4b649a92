"""The kit's Transformer against transformers' GPT-2: an oracle no one on this project wrote.

A small random ``GPT2LMHeadModel`` is copied into the reference ``kvcache.Transformer``;
logits must match with and without the cache, and greedy tokens must match ``generate``.
"""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from kvkit.cli import main
from kvkit.errors import UsageError
from kvkit.impl import import_impl
from kvkit.paths import Layout
from kvkit.tools import tool

PART1 = Layout.named("kv_cache")

from_gpt2 = tool(PART1, "hf").from_gpt2

ATOL = 1e-4
VOCAB = 101


def small_gpt2(**overrides) -> GPT2LMHeadModel:
    """A random 2-layer GPT-2, width 64, 4 heads, 101 tokens, 64 positions, in eval mode."""
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB, n_positions=64,
        bos_token_id=None, eos_token_id=None, pad_token_id=0, attn_implementation="eager", **overrides,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(scope="module")
def kvcache():
    return import_impl(PART1, PART1.reference)


@pytest.fixture(scope="module")
def pair(kvcache):
    """``(hf_model, kit_model)`` holding the same weights."""
    hf = small_gpt2()
    return hf, from_gpt2(kvcache, hf)


@torch.no_grad()
def test_logits_without_cache(pair):
    hf, kit = pair
    tokens = torch.randint(0, VOCAB, (2, 40), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(kit(tokens), hf(tokens).logits, atol=ATOL, rtol=0)


@torch.no_grad()
def test_logits_with_cache(pair, kvcache):
    """Prefill 20 tokens, feed a chunk of 5, then 10 single-token steps: every row matches the full run."""
    hf, kit = pair
    tokens = torch.randint(0, VOCAB, (1, 35), generator=torch.Generator().manual_seed(2))
    expected = hf(tokens).logits
    cache = kvcache.TransformerGenerator(kit, max_seq_len=64).new_cache(batch_size=1)
    chunks = [(0, 20), (20, 25)] + [(i, i + 1) for i in range(25, 35)]
    for start, end in chunks:
        got = kit(tokens[:, start:end], kv_cache=cache)
        torch.testing.assert_close(got, expected[:, start:end], atol=ATOL, rtol=0)
        assert cache.current_length == end


def test_weights_are_tied(pair):
    _, kit = pair
    assert kit.unemb.weight is kit.emb.weight


def test_greedy_tokens_equal_hf_generate(pair, kvcache):
    """With the cache (TransformerGenerator) and without it (full re-run per token)."""
    hf, kit = pair
    prompt = [7, 3, 99, 41, 12]
    expected = hf.generate(torch.tensor([prompt]), max_new_tokens=40, do_sample=False)[0].tolist()
    assert kvcache.TransformerGenerator(kit, max_seq_len=64).generate(prompt, 40) == expected
    uncached = list(prompt)
    with torch.no_grad():
        for _ in range(40):
            uncached.append(int(kit(torch.tensor([uncached]))[0, -1].argmax()))
    assert uncached == expected


def test_unsupported_config_is_a_usage_error(kvcache):
    with pytest.raises(UsageError, match="activation"):
        from_gpt2(kvcache, small_gpt2(activation_function="relu"))


def _save_word_tokenizer(folder) -> None:
    """A whitespace word-level tokenizer over ``w0 .. w100``, saved beside the model."""
    vocab = {f"w{i}": i for i in range(VOCAB)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="w0").save_pretrained(folder)


def test_generate_cli_matches_hf(tmp_path, capsys):
    hf = small_gpt2()
    hf.save_pretrained(tmp_path)
    expected = hf.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=6, do_sample=False)[0].tolist()
    assert main(["generate", "--hf", str(tmp_path), "--prompt-ids", "1,2,3", "--max-new-tokens", "6"]) == 0
    assert f"ids: {','.join(map(str, expected))}" in capsys.readouterr().out


def test_generate_cli_text_uses_local_tokenizer(tmp_path, capsys):
    hf = small_gpt2()
    hf.save_pretrained(tmp_path)
    _save_word_tokenizer(tmp_path)
    expected = hf.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=4, do_sample=False)[0].tolist()
    assert main(["generate", "--hf", str(tmp_path), "--text", "w1 w2 w3", "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert f"ids: {','.join(map(str, expected))}" in out
    assert f"text: {' '.join(f'w{i}' for i in expected)}" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hf", "{missing}", "--prompt-ids", "1"], "not a local GPT-2 checkpoint"),
        (["--hf", "{model}", "--prompt-ids", "1,x"], "comma-separated"),
        (["--hf", "{model}", "--prompt-ids", "1,500"], "outside this model's vocabulary"),
        (["--hf", "{model}", "--prompt-ids", "1", "--max-new-tokens", "100"], "exceeds"),
        (["--hf", "{model}", "--text", "w1"], "no tokenizer"),
    ],
)
def test_generate_cli_usage_errors(tmp_path, capsys, args, message):
    small_gpt2().save_pretrained(tmp_path / "model")
    capsys.readouterr()
    argv = [a.format(missing=tmp_path / "missing", model=tmp_path / "model") for a in args]
    assert main(["generate", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_generate_cli_rejects_a_non_gpt2_checkpoint(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    assert main(["generate", "--hf", str(tmp_path), "--prompt-ids", "1"]) == 2
    assert "not GPT-2" in capsys.readouterr().err


def test_chat_demo_reuses_cache_and_matches_full_recompute(capsys):
    assert main(["chat-demo"]) == 0
    out = capsys.readouterr().out
    assert "MISMATCH" not in out and out.count(": OK") == 3
    assert "reused 20 cached positions" in out and "all turns OK" in out
