"""What your KV cache buys: greedy decoding with it and without it, timed on your own code.

    python speed.py                  # your code in assignments/kvcache
    python speed.py --impl PATH      # a folder holding kvcache/ (or the kvcache folder itself)

For each prompt length, a small random model (your ``Transformer``) generates the
same new tokens twice:

- with the cache: your ``TransformerGenerator.generate``, one prefill of the
  prompt, then one forward per new token that feeds only that token;
- without it: your ``Transformer`` with ``kv_cache=None`` re-runs the whole
  sequence (prompt and the tokens so far) for every new token.

Both times include the work on the prompt. Torch runs on one thread unless
``--threads`` says otherwise: the model is small, and on a machine busy with
other work more threads mostly wait for each other. Needs only Python and
torch; takes about 5 to 10 s on one CPU thread. Timings are not graded: ``pytest``
checks your code.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
import traceback
from pathlib import Path

import torch

MODEL = {"depth": 4, "hidden_dim": 128, "vocab_size": 512, "nheads": 4}
PROMPT_LENGTHS = (64, 256, 1024)
NEW_TOKENS = 32
REPEATS, BUDGET_S = 3, 1.0  # each figure: the best of up to 3 runs, fewer once 1 s is spent


class NotReady(Exception):
    """The code cannot be timed yet; the message is the one line to print."""


def load_kvcache(folder: Path):
    """Import the ``kvcache`` package in ``folder`` (or ``folder`` itself when it is the package)."""
    package = folder if (folder / "__init__.py").is_file() and folder.name == "kvcache" else folder / "kvcache"
    if not (package / "__init__.py").is_file():
        raise NotReady(f"no kvcache package in {folder}: give --impl a folder holding kvcache/__init__.py")
    spec = importlib.util.spec_from_file_location("kvcache", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["kvcache"] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise NotReady(f"importing your kvcache failed: {explain(err, package)}") from err
    return module, package


def explain(err: BaseException, package: Path) -> str:
    """``"ValueError: message (kvcache/model.py, line 80)"``: the error's first line and where in your code."""
    message = (str(err).strip().splitlines() or [""])[0]
    text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    places = [(frame.filename, frame.lineno) for frame in traceback.extract_tb(err.__traceback__)]
    if isinstance(err, SyntaxError) and err.filename:
        places.append((err.filename, err.lineno))
    for filename, line in reversed(places):
        path = Path(filename).resolve()
        if path.is_relative_to(package.resolve()):
            return f"{text} (kvcache/{path.relative_to(package.resolve()).as_posix()}, line {line})"
    return text


def without_cache(model, prompt: list[int], new_tokens: int) -> list[int]:
    """Greedy decoding that runs the model over the whole sequence for every new token."""
    sequence = torch.tensor([prompt])
    for _ in range(new_tokens):
        logits = model(sequence)  # [1, length so far, vocab]: every position recomputed
        best = logits[:, -1].argmax(dim=-1, keepdim=True)
        sequence = torch.cat((sequence, best), dim=1)
    return sequence[0].tolist()


def best_time(run) -> tuple[float, list[int]]:
    """The fastest of up to :data:`REPEATS` calls of ``run()`` (fewer after :data:`BUDGET_S`), and what it returned."""
    times = []
    while len(times) < REPEATS and sum(times) < BUDGET_S:
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return min(times), out


def time_both(kvcache, prompt_length: int, new_tokens: int) -> dict:
    """Seconds to generate ``new_tokens`` after a random prompt, with and without the cache."""
    torch.manual_seed(0)
    model = kvcache.Transformer(max_seq_len=prompt_length + new_tokens, **MODEL).eval()
    generator = kvcache.TransformerGenerator(model, max_seq_len=prompt_length + new_tokens)
    prompt = torch.randint(0, MODEL["vocab_size"], (prompt_length,)).tolist()
    cached_s, cached = best_time(lambda: generator.generate(prompt, new_tokens))
    uncached_s, uncached = best_time(lambda: without_cache(model, prompt, new_tokens))
    return {"cached_s": cached_s, "uncached_s": uncached_s, "same_tokens": list(cached) == uncached}


def measure(kvcache, package: Path, lengths: list[int]) -> list[dict]:
    """One row per prompt length; an unfinished TODO or an error in your code becomes :class:`NotReady`."""
    try:
        with torch.inference_mode():
            time_both(kvcache, 8, 2)  # warm-up, and a quick stop on an unfinished TODO
            return [{"length": length, **time_both(kvcache, length, NEW_TOKENS)} for length in lengths]
    except NotImplementedError as err:
        todo = re.search(r"TODO (\d+)", str(err))
        check = f"pytest -m todo{todo.group(1)}" if todo else "pytest"
        raise NotReady(f"your code is not finished: {str(err).strip() or explain(err, package)}; finish that TODO "
                       f"({check} checks it), then run speed.py again") from err
    except Exception as err:
        raise NotReady(f"your code raised {explain(err, package)}; pytest shows which check fails") from err


def report(rows: list[dict], package: Path) -> None:
    """The table and the speed-up at the longest prompt."""
    threads = torch.get_num_threads()
    print(f"Greedy decoding of {NEW_TOKENS} new tokens with your code ({package}) on a random model: "
          f"{MODEL['depth']} layers, width {MODEL['hidden_dim']}, {MODEL['nheads']} heads, vocabulary "
          f"{MODEL['vocab_size']}; torch {torch.__version__}, {threads} thread{'s' if threads > 1 else ''}.")
    print(f"{'prompt':>6}  {'with cache':>17}  {'without cache':>17}  {'speed-up':>8}  same tokens")
    for row in rows:
        cached, uncached = NEW_TOKENS / row["cached_s"], NEW_TOKENS / row["uncached_s"]
        print(f"{row['length']:>6}  {cached:>11.0f} tok/s  {uncached:>11.0f} tok/s  "
              f"{row['uncached_s'] / row['cached_s']:>7.1f}x  {'yes' if row['same_tokens'] else 'NO'}")
    last = rows[-1]
    print(f"With a {last['length']}-token prompt your cache makes generation "
          f"{last['uncached_s'] / last['cached_s']:.1f}x faster: each new token runs the model on one position "
          "instead of all of them.")
    if not all(row["same_tokens"] for row in rows):
        print("Your cached and uncached decoding chose different tokens: run pytest to find the TODO that differs.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time greedy decoding with and without your KV cache.")
    parser.add_argument("--impl", type=Path, default=Path(__file__).resolve().parent / "assignments",
                        help="a folder holding kvcache/ (default: assignments/ next to this script)")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(PROMPT_LENGTHS), metavar="L",
                        help=f"prompt lengths (default {' '.join(map(str, PROMPT_LENGTHS))})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    if min(args.lengths) < 1 or args.threads < 1:
        parser.error(f"--lengths and --threads must be positive, got {args.lengths} and {args.threads}")
    torch.set_num_threads(args.threads)
    try:
        kvcache, package = load_kvcache(args.impl.expanduser())
        rows = measure(kvcache, package, sorted(args.lengths))
    except NotReady as err:
        print(f"speed.py: {err}", file=sys.stderr)
        return 1
    report(rows, package)
    return 0


if __name__ == "__main__":
    sys.exit(main())
