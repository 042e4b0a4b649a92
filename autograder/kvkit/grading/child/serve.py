"""The submission's process: imports the student's package (``kvcache``) and runs probes on request.

Started in the ``probe`` role of :mod:`kvchild.boot` (a cold child, or one forked by a zygote,
:mod:`kvchild.zygote`): from the harness's copy of this package (``kvchild``) it enters ``kvchild.jail``
first, reports ``{"booted": info}``, then calls :func:`serve` with its settings (``manifest``, the path of
the assignment's manifest in the harness, and ``lang``, the language of its messages), which takes the
probes and the codec from the harness's ``kvchecks``. It answers ``{"ready": true}`` or
``{"import_error": ...}``, then one reply per request ``{"probe": name, "args": {...}}``:
``{"ok": observations}`` or ``{"error": description}`` (see ``kvchecks.failures.describe``). It
decides nothing about the score; the grader judges what it sends back.
"""

from __future__ import annotations

import importlib
import os
import sys

import torch

from kvchecks import assignment, codec, i18n
from kvchecks.failures import describe, package_files

from . import protocol


def serve(read_fd: int, write_fd: int, submission: str, settings: dict) -> None:
    """Serve the assignment of ``settings["manifest"]``, speaking ``settings["lang"]``."""
    torch.set_num_threads(1)  # the checks' tensors are tiny; spinning threads only slow a busy machine
    assignment.use(settings["manifest"])
    with i18n.speaking(settings["lang"]):
        _serve(read_fd, write_fd, submission)


def _serve(read_fd: int, write_fd: int, submission: str) -> None:
    work = assignment.current()
    probes = work.probe_table()  # before the student's code runs
    sys.path.insert(0, submission)
    student = package_files(os.path.join(submission, work.package))
    try:
        package = importlib.import_module(work.package)
    except BaseException as err:  # anything the student's import does wrong is their zero, with the reason
        protocol.send(write_fd, {"import_error": describe(err, student)})
        return
    protocol.send(write_fd, {"ready": True})
    while (request := protocol.receive(read_fd)) is not None:
        try:
            result = probes[request["probe"]](package, **codec.from_jsonable(request["args"]))
            reply = {"ok": codec.to_jsonable(result)}
        except BaseException as err:  # includes SystemExit and KeyboardInterrupt raised by student code
            reply = {"error": describe(err, student)}
        protocol.send(write_fd, reply)

