"""How every child of the grader starts: one boot line, three roles.

The grader starts ``python -I -u -c BOOT HARNESS ROLE ARGS...`` (:func:`argv`;
inside ``bwrap`` in that mode), where ``HARNESS`` is the sandbox folder that
holds this package as ``kvchild``. ``ROLE`` is one of:

- ``probe READ_FD WRITE_FD SUBMISSION CONFIG SETTINGS``: enter the jail
  (``CONFIG``, :func:`kvchild.jail.enter`), report ``{"booted": info}`` on
  ``WRITE_FD``, then serve probes for the submission (:func:`kvchild.serve.serve`,
  with ``SETTINGS``);
- ``kernel CONFIG INFO_FILE KERNEL_ARGS...``: enter the jail, write what it
  did to ``INFO_FILE``, then become nbgrader's Jupyter kernel (``KERNEL_ARGS``
  are the kernel's own, ``-f CONNECTION_FILE``);
- ``zygote SOCKET_FD SETTINGS``: import torch and the probe code (or
  ipykernel), enter no jail, and fork one ``probe`` child per submission (or
  one ``kernel`` per notebook) on request (:mod:`kvchild.zygote`); it never
  imports a submission or runs a cell itself.

Standard library only at import: nothing runs before the jail but this file,
``kvchild/__init__.py`` and ``kvchild/jail.py``.
"""

from __future__ import annotations

import json
import os
import sys

BOOT = "import sys; sys.path.insert(0, sys.argv[1]); import kvchild.boot; kvchild.boot.main(sys.argv[2:])"


def argv(harness: str, role: str, *args: str) -> list[str]:
    """The command line that starts a child of ``role`` from the harness folder ``harness``."""
    return [sys.executable, "-I", "-u", "-c", BOOT, str(harness), role, *map(str, args)]


def main(args: list[str]) -> None:
    """Run ``ROLE`` and end the process as soon as it is done: the interpreter's own teardown, with torch imported,
    takes about half a second (the grader waits that long for each zygote as it ends), and would run ``atexit``
    functions a notebook or submission registered."""
    code = 1
    try:
        _run_role(args)
        code = 0
    except SystemExit as end:  # as the interpreter would end: None is 0, a message is printed and is 1
        code = end.code if isinstance(end.code, int) else int(end.code is not None)
        if not isinstance(end.code, int | None):
            print(end.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 (printed as the interpreter would, for the grader to quote)
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _run_role(args: list[str]) -> None:
    role, rest = args[0], args[1:]
    if role == "probe":
        read_fd, write_fd, submission, config, settings = rest
        probe(int(read_fd), int(write_fd), submission, json.loads(config), json.loads(settings))
    elif role == "kernel":
        kernel(json.loads(rest[0]), rest[1], rest[2:])
    elif role == "zygote":
        from . import zygote

        zygote.run(int(rest[0]), json.loads(rest[1]))
    else:
        raise SystemExit(f"kvchild: no role {role!r}")


def probe(read_fd: int, write_fd: int, submission: str, config: dict, settings: dict) -> None:
    """Confine this process, say so, and serve probes for ``submission`` until the grader closes the pipe."""
    from . import jail, protocol

    info = jail.enter(config)
    protocol.send(write_fd, {"booted": info})
    from .serve import serve

    serve(read_fd, write_fd, submission, settings)


INLINE = "module://matplotlib_inline.backend_inline"


def inline_plots() -> None:
    """Plots shown in the notebook, as in a kernel that imports matplotlib itself: ipykernel's start sets
    ``MPLBACKEND`` (unless the environment does) and matplotlib's import reads it; a kernel forked by a zygote that
    imported matplotlib before the kernel's environment was set is told here."""
    if not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = INLINE
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        matplotlib.rcParams["backend"] = os.environ["MPLBACKEND"]


def kernel(config: dict, info_file: str, kernel_args: list[str]) -> None:
    """Confine this process, write what it did to ``info_file``, then run the Jupyter kernel with ``kernel_args``."""
    from . import jail

    info = jail.enter(config)
    with open(info_file, "w") as f:
        f.write(json.dumps(info))
    # its parent is the jail's init (pid 1): ipykernel then neither polls it nor prints its banner for a terminal
    # (eight lines per notebook in the autograde log); set here, since a zygote imported ipykernel before any
    # environment of a kernel's
    sys.argv[1:] = [*kernel_args, "--IPKernelApp.parent_handle=1"]
    os.environ.pop("JPY_PARENT_PID", None)  # the pid of a process outside the jail (a cold kernel's launcher)
    inline_plots()
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()
