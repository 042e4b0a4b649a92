"""TODO 1: Attention.forward: grouped-query attention over a cache of num_kv_heads key/value heads.

Most checks build the layer with rope_base=None (no rotation, so TODO 2 is not run) and give it a list-based
stand-in cache that records every update call, so they do not depend on the real caches either. The checks of
the rotation say so (they run TODO 2 too), and the last check runs a whole model on a real KVCache (provided).
A failing output that equals what a known mistake computes gets that mistake's hint.
"""

import pytest

from kvchecks import expect
from kvchecks.i18n import _, ngettext
from kvserving_checks.configs_attention import GQA, HEADS, LOGITS, MODEL_GQA, ROPE_BASE_GQA, ROPE_GQA

pytestmark = pytest.mark.todo1

LENGTH = 10
ROTATION = (2,)  # the checks with rope_base set also run TODO 2 (apply_rotary)


def heads_text(config: dict) -> str:
    return f"num_heads={config['num_heads']}, num_kv_heads={config['num_kv_heads']}"


def compare(probe, expected, what, hint="", reference_chunks="same", needs=(), **args):
    """The layer's outputs for ``args`` against the reference's (uncached when ``reference_chunks`` is None)."""
    args = {"config": GQA, "seed": 11, "batch": 2, "length": LENGTH, **args}
    want_args = args if reference_chunks == "same" else dict(args, chunks=reference_chunks)
    got, want = probe("attention_run", **args), expected("attention_run", **want_args)
    mistakes = {name: seen["out"] for name, seen in expected.mistakes("attention_run", **args).items()}
    expect.close(got["out"], want["out"], what, hint=hint, mistakes=mistakes, needs=needs)
    return got, want


@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["mha", "gqa", "mqa"])
def test_attention_without_a_cache_matches_the_reference(probe, expected, kind):
    config = HEADS[kind]
    compare(probe, expected, _("attention output without a cache ({heads})").format(heads=heads_text(config)),
            config=config,
            hint=_("Project q with num_heads heads and k, v with num_kv_heads; scores q k^T / sqrt(head_dim), masked, "
                   "softmax, times v (query head h uses key/value head h // G, G = num_heads // num_kv_heads), heads "
                   "merged, Wo."))


@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["mha", "gqa", "mqa"])
def test_prefill_then_decode_steps_equal_one_shot(probe, expected, kind):
    config = HEADS[kind]
    what = _("outputs of a 4-token prefill then 1-token decode steps ({heads})").format(heads=heads_text(config))
    compare(probe, expected, what, config=config, chunks=[4] + [1] * (LENGTH - 4), reference_chunks=None,
            hint=_("With a cache, the new tokens attend over the keys and values that kv_cache.update returns (every "
                   "cached position and their own), under the mask they are given."))


@pytest.mark.points(3)
def test_the_cache_receives_num_kv_heads_heads(probe):
    got = probe("attention_run", config=GQA, seed=11, batch=2, length=LENGTH, chunks=[6, 1, 3])
    size = GQA["hidden_dim"] // GQA["num_heads"]
    want = [[2, GQA["num_kv_heads"], n, size] for n in (6, 1, 3)]
    expect.equal([[call["keys_shape"], call["values_shape"]] for call in got["updates"]], [[s, s] for s in want],
                 _("[keys shape, values shape] given to kv_cache.update per call ({heads})").format(
                     heads=heads_text(GQA)),
                 hint=_("The cache stores k and v as Wk and Wv give them, [B, num_kv_heads, S, head_dim]: that is the "
                        "memory grouped-query attention saves. Expand them to the query heads only after "
                        "kv_cache.update returns them."))


@pytest.mark.points(2)
def test_query_heads_share_key_value_heads_in_groups(probe, expected):
    config = dict(GQA, hidden_dim=48, num_heads=6, num_kv_heads=3)
    args = dict(config=config, seed=12, batch=1, length=7, wo_identity=True)
    got, want = probe("attention_run", **args), expected("attention_run", **args)
    out, size = expect.tensor(got["out"], _("attention output")), config["hidden_dim"] // config["num_heads"]
    wrong = []
    what = _("attention output with Wo = identity ({heads})").format(heads=heads_text(config))
    if out.shape == want["out"].shape:
        wrong = [h for h in range(config["num_heads"])
                 if not out[..., h * size:(h + 1) * size].allclose(want["out"][..., h * size:(h + 1) * size],
                                                                     atol=1e-5, rtol=1e-5)]
        if 0 < len(wrong) < config["num_heads"]:
            listed = str(wrong[0])
            for head in wrong[1:]:
                listed = _("{first}, {second}").format(first=listed, second=head)
            what = ngettext("the output of query head {wrong} (with Wo = identity, columns h * {size} .. h * {size} + "
                            "{last} are query head h's; {heads})",
                            "the output of query heads {wrong} (with Wo = identity, columns h * {size} .. h * {size} "
                            "+ {last} are query head h's; {heads})", len(wrong)).format(
                wrong=listed, size=size, last=size - 1, heads=heads_text(config))
    mistakes = {name: seen["out"] for name, seen in expected.mistakes("attention_run", **args).items()}
    hint = _("Every query head's output differs, not only some: the cause lies in what all heads share (the "
             "projections, the scores, the mask, the softmax); the checks of attention without a cache show more.")
    if out.shape == want["out"].shape and 0 < len(wrong) < config["num_heads"]:
        hint = _("With G = num_heads // num_kv_heads = 2, query heads 0 and 1 use key/value head 0, heads 2 and 3 use "
                 "key/value head 1, and so on: query head h uses key/value head h // G.")
    expect.close(out, want["out"], what, mistakes=mistakes, hint=hint)


@pytest.mark.points(3)
def test_the_mask_is_applied(probe, expected):
    compare(probe, expected, _("attention output under a mask that also hides some earlier keys"), mask="random",
            hint=_("Mask the scores where the mask argument is False (it is [B or 1, 1, S, T]); use the mask you are "
                   "given, not a causal one of your own."))
    compare(probe, expected, _("outputs of chunks 3, 4 and 3 under that mask"), mask="random", chunks=[3, 4, 3],
            reference_chunks=None, hint=_("With a cache the mask is [B, 1, S, T] over the T keys update returns."))


@pytest.mark.points(2)
def test_update_is_called_once_per_forward_with_layer_idx(probe):
    got = probe("attention_run", config=GQA, seed=11, batch=2, length=LENGTH, chunks=[5, 4, 1], layer_idx=2)
    expect.equal([[call["layer"], call["length"]] for call in got["updates"]], [[2, 0], [2, 5], [2, 9]],
                 _("[layer, current_length] of each kv_cache.update call (three forward calls, layer_idx=2)"),
                 hint=_("Call kv_cache.update(self.layer_idx, k, v) once per forward with the new tokens' keys and "
                        "values."))


@pytest.mark.points(2)
def test_the_layer_leaves_current_length_alone(probe):
    got = probe("attention_run", config=GQA, seed=11, batch=2, length=LENGTH, chunks=[5, 4, 1])
    expect.equal(got["lengths_after"], [0, 5, 9], _("kv_cache.current_length right after each forward call"),
                 hint=_("Every layer of one forward pass must see the same length: Transformer.forward advances "
                        "current_length once, after its last layer, never the attention layer."))


@pytest.mark.points(2)
def test_decode_projects_only_the_new_tokens(probe):
    chunks = [6, 1, 1, 1]
    got = probe("attention_run", config=GQA, seed=11, batch=1, length=9, chunks=chunks)
    for name in ("Wq", "Wk", "Wv"):
        expect.equal(got["rows"][name], chunks, _("positions seen by self.{name} per call").format(name=name),
                     hint=_("Project only the new tokens: the cache already holds the old keys and values."))


@pytest.mark.points(3)
@pytest.mark.uses(2)
def test_the_cache_stores_rotated_keys(probe, expected):
    args = dict(config=ROPE_GQA, seed=13, batch=2, length=LENGTH, chunks=[6, 1, 3])
    got, want = probe("attention_run", **args), expected("attention_run", **args)
    stored = expect.tensor(got["stored_keys"], _("the keys the cache received"))
    hint = _("With rope_base set, rotate q and k at positions with apply_rotary before kv_cache.update: the cache "
             "holds rotated keys, which are never rotated again.")
    if stored.shape == want["stored_keys"].shape and stored.allclose(got["raw_keys"], atol=1e-5):
        hint = _("the cache received Wk(x) unrotated. {hint}").format(hint=hint)
    expect.close(stored, want["stored_keys"], _("keys the cache received (rope_base=10000, chunks 6, 1, 3)"),
                 hint=hint, needs=ROTATION)
    expect.close(got["stored_values"], want["stored_values"], _("values the cache received"), needs=ROTATION,
                 hint=_("Values are never rotated: the cache receives Wv(x) as [B, num_kv_heads, S, head_dim]."))
    mistakes = {name: seen["out"] for name, seen in expected.mistakes("attention_run", **args).items()}
    expect.close(got["out"], want["out"],
                 _("outputs with rotation, chunks 6, 1, 3 (the cache received the right keys)"),
                 mistakes=mistakes, needs=ROTATION,
                 hint=_("Attend over the keys kv_cache.update returns as they are: they were rotated before storing "
                        "and are never rotated again."))


@pytest.mark.points(2)
@pytest.mark.uses(2)
def test_rotation_uses_the_given_positions(probe, expected):
    positions = [list(range(LENGTH)), [0] * 4 + list(range(LENGTH - 4))]  # the second row as left padding makes it
    args = dict(config=ROPE_GQA, seed=14, batch=2, length=LENGTH, chunks=[4, 1, 5], positions=positions)
    got, reference = probe("attention_run", **args), expected("attention_run", **args)
    stored = expect.tensor(got["stored_keys"], _("the keys the cache received"))
    right = reference["stored_keys"]
    hint = _("With rope_base set, rotate q and k at the positions argument with apply_rotary before "
             "kv_cache.update: the cache holds rotated keys.")
    if stored.shape == right.shape:
        if stored.allclose(got["raw_keys"], atol=1e-5):
            hint = _("the cache received Wk(x) unrotated. {hint}").format(hint=hint)
        elif stored[0].allclose(right[0], atol=1e-4) and not stored[1].allclose(right[1], atol=1e-4):
            hint = _("Rotate q and k at the positions argument ([B, S], one row per batch row: with left padding the "
                     "rows differ), not at positions of your own such as current_length + arange(S).")
    expect.close(stored, right, _("keys the cache received for batch rows of positions {positions}").format(
        positions=positions), needs=ROTATION, hint=hint)
    want = expected("attention_run", **dict(args, chunks=None))
    mistakes = {name: seen["out"] for name, seen in expected.mistakes("attention_run", **args).items()}
    expect.close(got["out"], want["out"],
                 _("outputs of chunks 4, 1, 5 whose batch rows have positions {positions} (the cache received the "
                   "right keys)").format(positions=positions), mistakes=mistakes, needs=ROTATION,
                 hint=_("The keys the cache received are rotated at the right positions: rotate q at the same "
                        "positions argument, and attend over the keys kv_cache.update returns as they are (never "
                        "rotated again)."))


@pytest.mark.points(2)
@pytest.mark.uses(2)
def test_the_layers_rope_base_is_used(probe, expected):
    args = dict(config=ROPE_BASE_GQA, seed=16, batch=2, length=LENGTH, chunks=[6, 1, 3])
    got, want = probe("attention_run", **args), expected("attention_run", **args)
    hint = _("With rope_base set, q and k are rotated with apply_rotary at the positions argument and with the "
             "layer's own base (this layer was built with rope_base={base}), before kv_cache.update.").format(
                 base=ROPE_BASE_GQA["rope_base"])
    seen = expected.mistakes("attention_run", **args)
    expect.close(got["stored_keys"], want["stored_keys"],
                 _("keys the cache received from a layer built with rope_base={base} (chunks 6, 1, 3)").format(
                     base=ROPE_BASE_GQA["rope_base"]), hint=hint, needs=ROTATION,
                 mistakes={name: observed["stored_keys"] for name, observed in seen.items()})
    expect.close(got["out"], want["out"], _("outputs of a layer built with rope_base={base} (chunks 6, 1, 3)").format(
        base=ROPE_BASE_GQA["rope_base"]), hint=hint, needs=ROTATION,
        mistakes={name: observed["out"] for name, observed in seen.items()})


@pytest.mark.points(3)
def test_a_gqa_model_runs_on_a_cache_of_num_kv_heads(probe, expected):
    args = dict(config=MODEL_GQA, seed=15, batch=2, length=9)
    got = probe("model_run", chunks=[5, 1, 1, 1, 1], **args)
    want = expected("model_run", chunks=None, **args)
    groups = MODEL_GQA["num_heads"] // MODEL_GQA["num_kv_heads"]
    expect.equal(got["nbytes"] * groups, got["full_nbytes"],
                 _("bytes of a KVCache of num_kv_heads heads, times {groups}, against one of num_heads heads").format(
                     groups=groups))
    what = _("logits of a {heads} model, prefill 5 then decode steps on a KVCache of num_kv_heads heads, against no "
             "cache").format(heads=heads_text(MODEL_GQA))
    expect.close(got["logits"], want["logits"], what, **LOGITS,
                 hint=_("The KVCache holds num_kv_heads heads, {groups} times fewer bytes than one of num_heads "
                        "heads; this check runs your layer in a whole model on it, and the checks of the layer alone "
                        "above show what differs.").format(groups=groups))
