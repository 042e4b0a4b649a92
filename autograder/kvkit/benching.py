"""What the benches made of parts share (parts 2 and 3: ``autograder/material/NAME/tools/bench.py``): their
options, the run that measures every part on every device, and the report's table and size formats; every
bench (part 1's too) keeps its report with :func:`keep`.

A part is ``part(kv, config, device, rounds, progress) -> dict``: its figures on one device, from its settings
``config``, best of ``rounds`` rounds, one ``progress.update()`` per round. The bench's ``FULL`` and ``QUICK``
settings hold each part's ``config`` under its name and the number of ``rounds``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from .errors import UsageError
from .impl import add_impl_argument, opened_impl


def add_options(parser, run: Callable, plot: str) -> None:
    """The bench's options: ``--impl``, ``--quick``, ``--threads``, ``--json`` and ``--plot`` (``plot``: what it
    draws)."""
    add_impl_argument(parser)
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny models, one round")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch CPU threads (default 1: on a machine shared with other work, more threads make "
                        "the figures erratic)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every figure as JSON")
    parser.add_argument("--plot", type=Path, metavar="OUT.png", help=plot)
    parser.set_defaults(func=run)


def run_parts(args, *, parts: dict[str, Callable], full: dict, quick: dict,
              try_everything: Callable[[ModuleType, object], None], checks: Callable[[dict], dict],
              print_report: Callable[[dict], None], plot: Callable[[dict, Path], None],
              extra: dict | None = None) -> int:
    """Measure every part on the CPU (and CUDA when there is one) with the package ``--impl`` names, after
    ``try_everything`` has called what the parts use once per device; print the report (``checks(report)``: name ->
    met), write it as JSON and draw it as asked. Exit status 0 when every check is met. ``extra``: more of the
    report (its targets)."""
    import torch

    if args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    settings = quick if args.quick else full
    rounds = settings["rounds"]
    try:
        from tqdm import tqdm
    except ImportError as err:
        raise UsageError("the bench's progress bar needs tqdm: pip install -e '.[bench]'") from err
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    measured = []
    with opened_impl(args.layout, args.impl) as impl, torch.inference_mode():
        for device in devices:
            try_everything(impl.module, device)
        with tqdm(total=len(devices) * len(parts) * rounds, desc="bench", unit="round") as progress:
            for device in devices:
                measured.append({"device": device.type, **{
                    name: part(impl.module, settings[name], device, rounds, progress) for name, part in parts.items()
                }})
    report = {
        "impl": str(impl.source), "kit_reference": impl.is_kit_reference, "quick": args.quick,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "rounds": rounds, "dtype": "float32",
        "settings": {name: settings[name] for name in parts}, **(extra or {}), "devices": measured,
    }
    report["checks"] = checks(report)
    print_report(report)
    keep(report, args, plot)
    return 0 if all(report["checks"].values()) else 1


def keep(report: dict, args, plot: Callable[[dict, Path], None]) -> None:
    """Write the report as JSON to ``--json`` and draw it to ``--plot``, where those were asked for."""
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        plot(report, args.plot)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Right-aligned columns."""
    cells = [header] + rows
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in cells]


def size(nbytes: float) -> str:
    """Bytes in GiB, MiB or KiB, whichever reads best."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{nbytes:,.0f} bytes"


def print_report(report: dict, package: str, parts: list[Callable[[dict], list[str]]], check_words: dict[str, str],
                 not_graded: str) -> None:
    """The set-up (``package``: the student's package, as the report's first word), each part's lines (``parts``),
    the checks in words (``check_words``: check name -> what it says), and for code other than the kit's reference,
    that the figures are not graded (``not_graded``)."""
    reference = report["kit_reference"]
    print(f"{package}: {report['impl']}" + (" (the kit's reference)" if reference else ""))
    rounds = f"{report['rounds']} round{'s' if report['rounds'] > 1 else ''}"
    threads = f"{report['threads']} CPU thread{'s' if report['threads'] > 1 else ''}"
    print(f"torch {report['torch']} ({threads}), {report['dtype']}, random weights; times are best of {rounds}"
          + (" (--quick)" if report["quick"] else ""))
    for lines in parts:
        print()
        for line in lines(report):
            print(line)
    print()
    print("Checks: " + "; ".join(f"{check_words[name]}: {'yes' if value else 'NO'}"
                                 for name, value in report["checks"].items()))
    if not reference:
        print(not_graded)
