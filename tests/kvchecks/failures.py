"""What went wrong in the student's code, told the same way by every runner.

An exception raised while a probe drives the student's package is described
as plain data (:func:`describe`): its type and message, the student's own
frames (file, line, function, source line; never the checks' or the
libraries') and the TODO whose function it came from. The description can
cross the pipe from the submission's process, so :func:`format_error` treats
it as untrusted text. The self-check, ``kvkit grade`` and the notebook all
print the result of :func:`format_error`.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable

from . import assignment, context
from .i18n import _

MAX_MESSAGE = 600
MAX_FRAMES = 4

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x1b]")


class StudentCodeError(Exception):
    """The student's code raised (or its process failed) while a probe ran; the message says what and where."""


def _qualname(frame) -> str:
    code = frame.f_code
    return getattr(code, "co_qualname", code.co_name)


def describe(err: BaseException, is_student_file: Callable[[str], bool]) -> dict:
    """Plain data about ``err``: ``type``, ``message``, ``todo`` (or None) and the student's ``frames``.

    ``is_student_file(path)`` says which frames are the student's own code.
    ``todo`` is the TODO whose function is the innermost student frame that
    is a TODO function (an error in a helper or in the provided code counts
    for the TODO that called it); ``todo_frame`` is that frame (the line of
    the TODO's code that was running), ``caller`` the nearest frame further
    out in another TODO's function (with its ``todo``: the TODO that called
    it), and ``todos`` every TODO the traceback passes through.
    """
    from .standins import shown  # a stand-in's class name is the kit's own: never in a message (torch: not
    # imported with the plugin, which a run's bad options stop first)

    frames, todo, todo_frame, chain = [], None, None, []
    todo_by_function = {t.function: t.number for t in assignment.current().todos.values()}
    tb = err.__traceback__
    entries = []
    while tb is not None:
        entries.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    for frame, line in entries:
        path = frame.f_code.co_filename
        if not is_student_file(path):
            continue
        name = _qualname(frame)
        source = traceback.FrameSummary(path, line, name).line or ""
        frames.append({"file": display_path(path), "line": line, "function": name, "code": source.strip()})
        if name in todo_by_function:
            todo, todo_frame = todo_by_function[name], frames[-1]
            chain.append(dict(frames[-1], todo=todo))
    caller = next((entry for entry in reversed(chain) if entry["todo"] != todo), None)
    if isinstance(err, SyntaxError) and err.filename and is_student_file(err.filename):
        frames.append({"file": display_path(err.filename), "line": err.lineno, "function": "",
                       "code": (err.text or "").strip()})
    message = err.msg if isinstance(err, SyntaxError) and frames and not frames[-1]["function"] else str(err)
    return {"type": type(err).__name__, "message": shown(str(message))[:MAX_MESSAGE], "todo": todo,
            "not_implemented": isinstance(err, NotImplementedError), "frames": frames[-MAX_FRAMES:],
            "todo_frame": todo_frame, "caller": caller, "todos": sorted({entry["todo"] for entry in chain})}


def display_path(path: str) -> str:
    """``.../kvcache/model.py`` -> ``kvcache/model.py``; a Jupyter cell -> ``your notebook cell``."""
    parts = path.replace(os.sep, "/").split("/")
    if len(parts) > 1 and parts[-2].startswith("ipykernel_"):
        return _("your notebook cell")
    package = assignment.current().package
    if package in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index(package):])
    return parts[-1]


def package_files(folder: str) -> Callable[[str], bool]:
    """A test for :func:`describe`: frames of files inside the package folder ``folder`` are the student's."""
    root = os.path.realpath(folder).rstrip("/") + "/"
    return lambda path: os.path.realpath(path).startswith(root)


def student_files_of(kv) -> Callable[[str], bool]:
    """The test for :func:`describe` that fits the package object ``kv`` the probes were given.

    An imported package: its own folder. A notebook's classes: whatever
    ``kv.is_student_file`` says (the notebook runner knows its cells).
    """
    custom = getattr(kv, "is_student_file", None)
    if callable(custom):
        return custom
    path = list(getattr(kv, "__path__", None) or [])
    return package_files(path[0]) if path else (lambda _path: False)


def _clean(text, limit: int) -> str:
    return _CONTROL.sub("", str(text))[:limit]


def todo_label(todo: int) -> str:
    return f"TODO {todo} ({assignment.current().todos[todo].function})"


def format_error(description: dict, check_todo: int | None = None) -> str:
    """The failure message for an exception the student's code raised during a check of ``check_todo``.

    ``description`` comes from :func:`describe`, possibly from the
    submission's process: every field is checked and bounded here.
    """
    kind = _clean(description.get("type", "Exception"), 80)
    message = _clean(description.get("message", ""), MAX_MESSAGE)
    todos = assignment.current().todos
    todo = description.get("todo")
    todo = todo if type(todo) is int and todo in todos else None
    frames = [f for f in description.get("frames", []) if isinstance(f, dict)][-MAX_FRAMES:]
    unfinished = description.get("not_implemented") is True or kind == "NotImplementedError"
    context.runs(t for t in (description.get("todos") or []) if t in todos)  # for kvchecks.blame
    if unfinished and todo is not None:
        context.reached_stub(todo)
    caller = description.get("caller")
    caller = caller if isinstance(caller, dict) and type(caller.get("todo")) is int and caller["todo"] in todos \
        and caller["todo"] != todo else None
    where = ""
    place = {}
    if frames:
        last = frames[-1]
        running = description.get("todo_frame")
        if not unfinished and todo is not None and isinstance(running, dict) and running != last:
            # raised in code this TODO called (the provided code, a helper): the TODO's own line comes first
            place = {"file": _clean(running.get("file"), 120), "line": _clean(running.get("line"), 10)}
            where = "\n  " + _("at {file}, line {line}, in {function}: {code}").format(
                function=_clean(running.get("function"), 80), code=_clean(running.get("code"), 160), **place)
            where += "\n  " + _("(raised inside {function}, which that line calls)").format(
                function=_clean(last.get("function"), 80))
        else:
            place = {"file": _clean(last.get("file"), 120), "line": _clean(last.get("line"), 10)}
            where = "\n  " + _("at {file}, line {line}, in {function}: {code}").format(
                function=_clean(last.get("function"), 80), code=_clean(last.get("code"), 160), **place)
    if caller is not None and not unfinished:
        where += "\n  " + _("called at {file}, line {line}, in {function}: {code}").format(
            file=_clean(caller.get("file"), 120), line=_clean(caller.get("line"), 10),
            function=_clean(caller.get("function"), 80), code=_clean(caller.get("code"), 160))
    if unfinished:
        if todo is not None and place:
            text = _("{todo} is not implemented yet (NotImplementedError at {file}, line {line})").format(
                todo=todo_label(todo), **place)
        elif todo is not None:
            text = _("{todo} is not implemented yet (NotImplementedError)").format(todo=todo_label(todo))
        elif place:
            text = _("a TODO is not implemented yet (NotImplementedError at {file}, line {line})").format(**place)
        else:
            text = _("a TODO is not implemented yet (NotImplementedError)")
    elif todo is not None and caller is not None:  # the TODO that raised may be right to, called so
        text = _("your {caller} called {todo}, which raised {kind}: {message}").format(
            caller=todo_label(caller["todo"]), todo=todo_label(todo), kind=kind, message=message) + where
    elif todo is not None:
        text = _("your {todo} raised {kind}: {message}").format(todo=todo_label(todo), kind=kind,
                                                                message=message) + where
    else:
        text = _("your code raised {kind}: {message}").format(kind=kind, message=message) + where
    hint = error_hint(kind, message, todo)
    return text + ("\n  " + _("Hint: {hint}").format(hint=hint) if hint else "")


def summary(description: dict) -> str:
    """One line: ``ValueError: message (kvcache/model.py, line 80)``."""
    message = (_clean(description.get("message", ""), MAX_MESSAGE).strip().splitlines() or [""])[0][:300]
    text = f"{_clean(description.get('type', 'Exception'), 80)}" + (f": {message}" if message else "")
    frames = description.get("frames") or []
    if not frames:
        return text
    return _("{error} ({file}, line {line})").format(error=text, file=frames[-1]["file"], line=frames[-1]["line"])


def format_import_error(description: dict) -> str:
    """The failure message of every check when the student's package cannot even be imported."""
    frames = [f for f in description.get("frames", []) if isinstance(f, dict)]
    where = ""
    if frames:
        last = frames[-1]
        where = "\n  " + _("at {file}, line {line}: {code}").format(
            file=_clean(last.get("file"), 120), line=_clean(last.get("line"), 10), code=_clean(last.get("code"), 160))
    return _("importing {package} failed: {kind}: {message}").format(
        package=assignment.current().package, kind=_clean(description.get("type", "Exception"), 80),
        message=_clean(description.get("message", ""), MAX_MESSAGE)) + where


def format_timeout(description: dict, seconds: float, probe: str = "") -> str:
    """The failure message for a probe stopped after ``seconds``: where the student's code was running (the
    probe's name is the kit's own and is never shown)."""
    frames = description.get("frames") or []
    where = ""
    if frames:
        last = frames[-1]
        where = "\n  " + _("it was running {file}, line {line}, in {function}: {code}").format(
            file=last["file"], line=last["line"], function=last["function"], code=last["code"])
    todo = description.get("todo")
    if todo in assignment.current().todos:
        text = _("timed out after {seconds:g} s: your {todo} did not finish (an endless loop?)").format(
            seconds=seconds, todo=todo_label(todo))
    else:
        text = _("timed out after {seconds:g} s: your code did not finish (an endless loop?)").format(seconds=seconds)
    return text + where


def error_hint(kind: str, message: str, todo: int | None) -> str:
    """A hint for an exception whose cause is known from its kind and message alone (empty if none): the
    assignment's checks package says, through its ``error_hint`` (if it has one)."""
    own = getattr(assignment.current().checks_module(), "error_hint", None)
    return own(kind, message, todo) if own is not None else ""


def check_failure(err: BaseException, place: str | None) -> str:
    """Why a check failed, for the report: the check's own message (a comparison, the student's error, the kit's
    missing goldens), a timeout, or what the check could not do with the code's results (``place``: file:line)."""
    from .goldens import MissingGolden
    from .timing import CheckTimeout

    if isinstance(err, (AssertionError, StudentCodeError, MissingGolden)):
        return str(err)
    if isinstance(err, CheckTimeout):
        return _("the check ran past its time limit")
    if place is None:
        return _("the check could not use what your code returned: {kind}: {error}").format(kind=type(err).__name__,
                                                                                            error=err)
    return _("the check could not use what your code returned: {kind}: {error} ({place})").format(
        kind=type(err).__name__, error=err, place=place)
