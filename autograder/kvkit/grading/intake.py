"""One intake for every grading path: what a student hands in, taken in once, as adversary data.

``kvkit grade``, ``grade-all``, Gradescope's ``run_autograder``, ``--impl``
and ``nbgrader autograde`` take a submission in through :func:`received` (a
path) or :func:`take_in_notebook` (a notebook already read). Accepted: a folder
holding ``kvcache/`` (or ``kvcache/`` itself, or one ``kvcache`` package
somewhere below, as in a copy of the whole exercise), the package's loose
files (as Gradescope's upload leaves them), a ``.zip`` of any of these, a
notebook (``.ipynb``), or a folder holding nothing but one zip or notebook.

How it reads:

- no link is ever followed: every folder and file is opened relative to its
  parent with ``O_NOFOLLOW`` (a link swapped in while it is read fails to
  open), files are opened non-blocking (a pipe cannot stall it) and read only
  when ``fstat`` says they are regular, small enough (a 6 GB sparse file is
  never read) and have one name (a hard link can name a file the student
  cannot read, where the kernel does not protect hard links);
- inside the package, a link, pipe, device or socket, a name that is not
  UTF-8 or cannot be written, too many files or bytes, is refused with one
  line; beside the package such entries are not read, and a note names them;
- zips are read in memory (no extraction to follow links through): paths
  outside the archive, links, encrypted entries, clashing or duplicated
  names, bombs and too many entries are refused;
- notebooks become the package through the release notebook's layout
  (:func:`kvkit.grading.notebooks.package_from_notebook`): answer cells that
  are missing or damaged count as the release's stubs, never the solution;
- the package's bytes are written once into the grader's own folder, and the
  :class:`Submission`'s fingerprint is a hash of exactly what was written: what
  is graded is what was fingerprinted. Nothing reads the student's files
  after that.

Every function takes the assignment whose package it looks for (a
:class:`~kvkit.paths.Layout`). Every failure is a
:class:`~kvkit.errors.UsageError` with one line that says what is wrong and
what to do.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kvchecks.i18n import N_, _, ngettext

from ..errors import UsageError
from ..paths import Layout

WHAT = "give a folder that holds your {package}/ package, a .zip of it, or your notebook (.ipynb)"
MAX_ZIP_BYTES = 50 * 1024 * 1024  # a zip file, and what it unpacks to, all members together
MAX_ZIP_MEMBERS = 2000
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_PACKAGE_FILES = 500
MAX_PACKAGE_BYTES = 20 * 1024 * 1024
MAX_SCAN_ENTRIES = 20_000  # entries looked at while searching a folder for the package
MAX_DEPTH = 4  # folders searched below the given one
MAX_NAME_BYTES = 255
MAX_NESTING = 2  # a zip or notebook inside a zip or folder
MAX_NOTES = 5
SKIP_DIRS = {"__MACOSX", "__pycache__", "site-packages", "node_modules", ".venv", "venv", ".git"}
KINDS = {stat.S_IFLNK: N_("a symbolic link"), stat.S_IFIFO: N_("a pipe (FIFO)"), stat.S_IFSOCK: N_("a socket"),
         stat.S_IFCHR: N_("a device"), stat.S_IFBLK: N_("a device")}
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class Submission:
    """A submission taken in: the grader's own copy of the package, and what was learnt taking it in.

    ``folder`` holds the package (``kvcache/`` for part 1; plain files the grader wrote, nothing else); ``places``
    maps a module to ``[first line, last line, label]`` of each notebook cell
    it was made from (empty unless a notebook was handed in); ``notes`` are
    lines for the report (entries left out, answer cells missing).
    """

    given: str
    folder: Path
    fingerprint: str
    places: dict[str, list] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def package(self) -> Path:
        """The package's folder in ``folder`` (the one thing the intake writes there)."""
        return next(self.folder.iterdir())


@contextmanager
def received(layout: Layout, path: Path | str) -> Iterator[Submission]:
    """:func:`take_in` into a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="kvkit-intake-") as scratch:
        yield take_in(layout, Path(path), Path(scratch))


def take_in(layout: Layout, path: Path, scratch: Path) -> Submission:
    """Read ``path`` (a folder, zip or notebook holding ``layout``'s package; see the module's docstring) into
    ``scratch``."""
    return _Intake(layout).take_in(Path(path), Path(scratch))


def take_in_notebook(layout: Layout, nb: dict, release: dict, scratch: Path, given: str = "notebook") -> Submission:
    """A notebook already read (nbformat data, e.g. nbgrader's) taken in against ``release``'s layout."""
    from .notebooks import package_from_notebook

    out = Path(scratch) / "submission"
    try:
        built = package_from_notebook(layout, nb, release, out)
    except ValueError as err:
        raise UsageError(f"{given}: {err}")
    return Submission(given, out, fingerprint_of(out, built.places), built.places, tuple(built.notes))


def fingerprint_of(folder: Path, places: dict) -> str:
    """A hash of every file under ``folder`` (the grader's copy) and of the notebook places."""
    h = hashlib.sha256(json.dumps(places, sort_keys=True).encode())
    for file in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        data = file.read_bytes()
        h.update(b"F" + str(file.relative_to(folder)).encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


def _bounded(notes: list[str]) -> list[str]:
    if len(notes) <= MAX_NOTES:
        return notes
    more = len(notes) - MAX_NOTES
    return notes[:MAX_NOTES] + [ngettext("... and {count} more note", "... and {count} more notes", more).format(
        count=more)]


# --- sources: a folder read through file descriptors, a zip read in memory ----------------------------------------

class FolderSource:
    """A folder on disk, every entry opened relative to its parent without following links."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fd = os.open(root, DIR_FLAGS)

    def close(self) -> None:
        os.close(self.fd)

    def _dir_fd(self, parts: tuple[str, ...]) -> int:
        fd = os.dup(self.fd)
        for part in parts:
            try:
                new = os.open(part, DIR_FLAGS, dir_fd=fd)
            finally:
                os.close(fd)
            fd = new
        return fd

    def list(self, parts: tuple[str, ...]) -> dict[str, tuple[str, int]]:
        """name -> (kind, size) of the folder at ``parts``; kind is ``dir``, ``file`` or what :data:`KINDS` says."""
        fd = self._dir_fd(parts)
        try:
            out = {}
            for name in os.listdir(fd):
                info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                mode = info.st_mode
                kind = "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else \
                    KINDS.get(stat.S_IFMT(mode), "not a regular file")
                out[name] = (kind, info.st_size)
            return out
        finally:
            os.close(fd)

    def read(self, parts: tuple[str, ...], limit: int) -> bytes:
        fd = self._dir_fd(parts[:-1])
        try:
            file = os.open(parts[-1], FILE_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        return _read_fd(file, "/".join(parts), limit)


class ZipSource:
    """A zip archive's entries as a tree, read in memory; refused whole when any entry is unsafe."""

    def __init__(self, data: bytes, label: str, what: str) -> None:
        self.label = label
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            members = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError) as err:
            raise UsageError(f"{label} is not a readable zip archive ({err}): {what}")
        except UnicodeDecodeError:
            raise UsageError(f"{label} has an entry whose name is not valid UTF-8: rename it and zip again")
        if len(members) > MAX_ZIP_MEMBERS:
            raise UsageError(f"{label} holds {len(members)} entries, over the limit of {MAX_ZIP_MEMBERS}: "
                             "zip only your code")
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise UsageError(f"{label} unpacks to {sum(m.file_size for m in members)} bytes, over the limit of "
                             f"{MAX_ZIP_BYTES}: zip only your code")
        self.tree: dict[tuple[str, ...], dict | zipfile.ZipInfo] = {(): {}}
        for member in members:
            self._add(member)
        self.unpacked = 0

    def _add(self, member: zipfile.ZipInfo) -> None:
        name = member.filename
        parts = tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p != ".")
        if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
            raise UsageError(f"{self.label} has an entry outside its own folder ({name!r}): refused")
        if not parts:
            raise UsageError(f"{self.label} has an entry with an empty name: refused; zip plain files only")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise UsageError(f"{self.label} has a symbolic link ({name!r}): refused; zip plain files only")
        if member.flag_bits & 0x1:
            raise UsageError(f"{self.label} is encrypted ({name!r} needs a password): zip it without a password")
        for part in parts:
            _check_name(part, self.label)
        for depth in range(1, len(parts)):  # the folders on the way
            folder = self.tree.setdefault(parts[:depth], {})
            if not isinstance(folder, dict):
                raise UsageError(f"{self.label} holds {'/'.join(parts[:depth])!r} both as a file and as a folder: "
                                 "zip your files again")
        previous = self.tree.get(parts)
        if member.is_dir():
            if previous is not None and not isinstance(previous, dict):
                raise UsageError(f"{self.label} holds {'/'.join(parts)!r} both as a file and as a folder: "
                                 "zip your files again")
            self.tree.setdefault(parts, {})
        elif previous is not None:
            kind = "twice" if not isinstance(previous, dict) else "both as a file and as a folder"
            raise UsageError(f"{self.label} holds {'/'.join(parts)!r} {kind}: zip your files again")
        else:
            self.tree[parts] = member

    def close(self) -> None:
        self.zip.close()

    def list(self, parts: tuple[str, ...]) -> dict[str, tuple[str, int]]:
        out = {}
        for key, node in self.tree.items():
            if len(key) == len(parts) + 1 and key[:-1] == parts:
                out[key[-1]] = ("dir", 0) if isinstance(node, dict) else ("file", node.file_size)
        return out

    def read(self, parts: tuple[str, ...], limit: int) -> bytes:
        member = self.tree[parts]
        chunks, size = [], 0
        try:
            with self.zip.open(member) as src:
                while chunk := src.read(1 << 16):  # the sizes in the header may lie: count what comes out
                    size += len(chunk)
                    self.unpacked += len(chunk)
                    if self.unpacked > MAX_ZIP_BYTES:
                        raise UsageError(f"{self.label} unpacks to more than {MAX_ZIP_BYTES} bytes: zip only your code")
                    if size > limit:
                        raise UsageError(f"{self.label}: {'/'.join(parts)} is over {limit} bytes: zip only your code")
                    chunks.append(chunk)
        except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError, ValueError) as err:
            raise UsageError(f"{self.label}: {'/'.join(parts)} could not be unpacked ({err}): zip it again")
        return b"".join(chunks)


# --- finding the package --------------------------------------------------------------------------------------------

class _Intake:
    """One intake of a submission of ``layout``'s assignment: its package's name and files, and the release notebook
    a notebook is read against."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.package = layout.assignment.package
        self.loose = layout.assignment.files  # the package's files given loose, without their folder
        self.what = WHAT.format(package=self.package)

    def take_in(self, path: Path, scratch: Path) -> Submission:
        """Read ``path`` (a folder, zip or notebook; see the module's docstring) into ``scratch``."""
        shown = _text(str(path))
        out = Path(scratch) / "submission"
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise UsageError(f"{shown} does not exist: {self.what}")
        except OSError as err:
            raise UsageError(f"{shown} cannot be read ({err.strerror}): {self.what}")
        if stat.S_ISLNK(info.st_mode):
            raise UsageError(f"{shown} is a symbolic link: hand in the folder or file itself")
        notes: list[str] = []
        try:
            if stat.S_ISDIR(info.st_mode):
                places = self.from_folder(path, out, notes)
            elif stat.S_ISREG(info.st_mode):
                places = self.from_file(path.name, self.read_path(path), out, notes, depth=0, label=shown)
            else:
                raise UsageError(f"{shown} is {KINDS.get(stat.S_IFMT(info.st_mode), 'not a regular file')}: "
                                 f"{self.what}")
        except (OSError, RecursionError) as err:  # a file swapped or removed while it was read, or nesting too deep
            raise UsageError(f"{shown} could not be read ({getattr(err, 'strerror', None) or type(err).__name__}): "
                             "hand it in again, unchanged while it is graded")
        return Submission(shown, out, fingerprint_of(out, places), places, tuple(_bounded(notes)))

    def from_folder(self, path: Path, out: Path, notes: list[str]) -> dict:
        try:
            source = FolderSource(path)
        except OSError as err:
            raise UsageError(f"{_text(str(path))} cannot be read ({err.strerror}): {self.what}")
        try:
            return self.from_source(source, _text(str(path)), path.name, out, notes, depth=0)
        finally:
            source.close()

    def from_file(self, name: str, data: bytes, out: Path, notes: list[str], depth: int, label: str) -> dict:
        if depth > MAX_NESTING:
            raise UsageError(f"{label}: archives or notebooks nested too deep: {self.what}")
        suffix = PurePosixPath(name).suffix.lower()
        if suffix == ".zip":
            source = ZipSource(data, label, self.what)
            try:
                return self.from_source(source, label, PurePosixPath(name).stem, out, notes, depth)
            finally:
                source.close()
        if suffix == ".ipynb":
            return self.from_notebook_bytes(data, out, notes, label)
        raise UsageError(f"{label} is neither a folder, a .zip nor a notebook: {self.what}")

    def from_source(self, source, label: str, name: str, out: Path, notes: list[str], depth: int) -> dict:
        """Find the package in ``source`` and copy it to ``out``; the notebook places ({} unless from a notebook)."""
        top = source.list(())
        if self.package in top:
            kind = top[self.package][0]
            if kind != "dir":
                raise UsageError(f"{label}: {self.package} is {_kind_words(kind)}: hand in the folder itself, plain "
                                 "files only")
            if source.list((self.package,)).get("__init__.py", ("",))[0] == "file":
                self.copy_package(source, (self.package,), label, out, notes)
                _note_strays(source, top, (), label, notes, skip={self.package})
                return {}
        if name == self.package and top.get("__init__.py", ("",))[0] == "file":
            self.copy_package(source, (), label, out, notes)
            return {}
        if all(top.get(file, ("",))[0] == "file" for file in self.loose):
            self.copy_loose(source, top, label, out, notes)
            return {}
        found, links = self.packages_below(source, label)
        if links:
            raise UsageError(f"{label}: {links[0]} is a symbolic link: hand in the folder itself, plain files only")
        if len(found) == 1:
            self.copy_package(source, found[0], label, out, notes)
            return {}
        if len(found) > 1:
            names = ", ".join("/".join(p) for p in found[:4])
            raise UsageError(f"{label} holds {len(found)} {self.package} packages ({names}): which one to grade is "
                             "ambiguous; keep exactly one")
        entries = {n: v for n, v in top.items() if not n.startswith(".") and n != "__MACOSX"}
        inputs = [n for n, (kind, _size) in entries.items()
                  if kind == "file" and PurePosixPath(n).suffix.lower() in (".zip", ".ipynb")]
        if len(inputs) == 1:
            inner = inputs[0]
            limit = MAX_ZIP_BYTES if inner.lower().endswith(".zip") else MAX_NOTEBOOK_BYTES
            _check_name(inner, label)
            data = _read_limited(source, (inner,), limit, f"{label}/{inner}")
            return self.from_file(inner, data, out, notes, depth + 1, f"{label}/{inner}")
        if len(inputs) > 1:
            raise UsageError(f"{label} holds no {self.package} package but several archives/notebooks "
                             f"({', '.join(sorted(inputs)[:4])}): keep exactly one")
        if not entries:
            raise UsageError(f"{label} is empty: {self.what}")
        raise UsageError(f"{label} holds no {self.package} package (expected {label}/{self.package}/__init__.py): "
                         f"{self.what}")

    def packages_below(self, source, label: str) -> tuple[list[tuple[str, ...]], list[str]]:
        """Every folder named as the package with an ``__init__.py`` below the top (bounded), and links so
        named."""
        found, links, seen = [], [], 0
        pending = [()]
        while pending:
            parts = pending.pop(0)
            if len(parts) >= MAX_DEPTH:
                continue
            listing = source.list(parts)
            seen += len(listing)
            if seen > MAX_SCAN_ENTRIES:
                raise UsageError(f"{label} holds more than {MAX_SCAN_ENTRIES} entries: hand in only your code")
            for name, (kind, _size) in sorted(listing.items()):
                here = (*parts, name)
                if name == self.package and parts and kind not in ("dir", "file"):
                    links.append("/".join(here))
                if kind != "dir" or name.startswith(".") or name in SKIP_DIRS or not _valid_name(name):
                    continue
                if name == self.package and parts and source.list(here).get("__init__.py", ("",))[0] == "file":
                    found.append(here)
                elif name != self.package or not parts:
                    pending.append(here)
        return found, links

    def copy_package(self, source, parts: tuple[str, ...], label: str, out: Path, notes: list[str]) -> None:
        """Copy the package at ``parts`` into ``out/<package>``: plain files only, every name valid, within the
        limits."""
        target = out / self.package
        target.mkdir(parents=True)
        count = size = 0
        pending = [((), parts)]
        while pending:
            inside, where = pending.pop()
            for name, (kind, length) in sorted(source.list(where).items()):
                shown = _text("/".join((self.package, *inside, name)))
                if name == "__pycache__" or name.endswith(".pyc"):
                    continue
                _check_name(name, f"{label}: {shown}")
                if kind == "dir":
                    (target.joinpath(*inside, name)).mkdir()
                    pending.append(((*inside, name), (*where, name)))
                    continue
                if kind != "file":
                    raise UsageError(f"{label}: {shown} is {kind}: submit plain files only")
                count += 1
                size += length
                if count > MAX_PACKAGE_FILES:
                    raise UsageError(f"{label}: {self.package}/ holds more than {MAX_PACKAGE_FILES} files: submit "
                                     "only code")
                if size > MAX_PACKAGE_BYTES:
                    raise UsageError(f"{label}: {self.package}/ holds more than {MAX_PACKAGE_BYTES} bytes: submit "
                                     "only code")
                data = _read_limited(source, (*where, name), MAX_PACKAGE_BYTES, f"{label}: {shown}")
                target.joinpath(*inside, name).write_bytes(data)

    def copy_loose(self, source, top: dict, label: str, out: Path, notes: list[str]) -> None:
        """The package's files handed in without their folder: the top level's plain ``.py`` files."""
        target = out / self.package
        target.mkdir(parents=True)
        taken = set()
        for name, (kind, _size) in sorted(top.items()):
            if name.endswith(".py") and kind == "file" and _valid_name(name):
                target.joinpath(name).write_bytes(_read_limited(source, (name,), MAX_PACKAGE_BYTES, f"{label}/{name}"))
                taken.add(name)
        _note_strays(source, top, (), label, notes, skip=taken)

    def read_path(self, path: Path) -> bytes:
        limit = MAX_NOTEBOOK_BYTES if path.suffix.lower() == ".ipynb" else MAX_ZIP_BYTES
        if path.suffix.lower() not in (".zip", ".ipynb"):
            raise UsageError(f"{_text(str(path))} is neither a folder, a .zip nor a notebook: {self.what}")
        data = _read_fd(os.open(path, FILE_FLAGS), _text(str(path)), limit)
        if len(data) > limit:
            raise UsageError(f"{_text(str(path))} is over the limit of {limit} bytes: "
                             + ("clear the outputs" if limit == MAX_NOTEBOOK_BYTES else "zip only your code"))
        return data

    def from_notebook_bytes(self, data: bytes, out: Path, notes: list[str], label: str) -> dict:
        if len(data) > MAX_NOTEBOOK_BYTES:
            raise UsageError(f"{label} is {len(data)} bytes, over the limit of {MAX_NOTEBOOK_BYTES}: clear the outputs")
        try:
            from ..courses import english
            from .notebooks import package_from_notebook, parse_notebook
        except ImportError:
            raise UsageError(f"{label}: this kit cannot read notebooks (kvkit.grading.notebooks is missing): "
                             f"{self.what}")
        release = _release(english(self.layout).release_notebook)
        try:
            built = package_from_notebook(self.layout, parse_notebook(data, label), release, out)
        except UsageError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:  # a damaged notebook
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise UsageError(f"{label} could not be turned into a {self.package} package: {first[:300]}")
        notes.extend(built.notes)
        return built.places


def _note_strays(source, listing: dict, parts: tuple[str, ...], label: str, notes: list[str], skip: set) -> None:
    """Notes for the entries beside the package a person may have meant to hand in: links, pipes, devices, bad names."""
    for name, (kind, _size) in sorted(listing.items()):
        if name in skip:
            continue
        shown = _printable(name)
        if not _valid_name(name):
            notes.append(_("Left out {name}: its name is not valid UTF-8 or too long.").format(name=shown))
        elif kind not in ("dir", "file"):
            notes.append(_("Left out {name}: it is {kind}; only plain files and folders are read.").format(
                name=shown, kind=_(kind)))


def _read_limited(source, parts: tuple[str, ...], limit: int, label: str) -> bytes:
    data = source.read(parts, limit)
    if len(data) > limit:
        raise UsageError(f"{label} is over {limit} bytes: hand in only your code")
    return data


def _read_fd(fd: int, label: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of an open file, which must be a regular file (a pipe or device is refused)."""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{label} is {KINDS.get(stat.S_IFMT(info.st_mode), 'not a regular file')}: "
                             "submit plain files only")
        if info.st_size > limit:
            raise UsageError(f"{label} is {info.st_size} bytes, over the limit of {limit}: hand in only your code")
        if info.st_nlink > 1:  # another name of a file elsewhere (where hard links are not protected: any file)
            raise UsageError(f"{label} has {info.st_nlink} hard links: hand in a copy of your file, not a link to one")
        chunks, size = [], 0
        while size <= limit and (chunk := os.read(fd, min(1 << 20, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# --- notebooks ---------------------------------------------------------------------------------------------------

_RELEASES: dict[Path, dict] = {}


def _release(path: Path) -> dict:
    """The kit's release notebook (the answer cells' stubs and the package layout), read once per process."""
    if path not in _RELEASES:
        from .notebooks import read_notebook

        if not Path(path).is_file():
            raise UsageError(f"this kit has no release notebook ({path}) to read notebooks against: "
                             "run `make notebook`")
        _RELEASES[path] = read_notebook(path)
    return _RELEASES[path]


# --- names ---------------------------------------------------------------------------------------------------------

def _valid_name(name: str) -> bool:
    """A name that can be written anywhere: UTF-8, not empty, at most 255 bytes, no NUL, no slash."""
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, as os.listdir gives them back
        return False
    return 0 < len(raw) <= MAX_NAME_BYTES and b"\0" not in raw and b"/" not in raw and name not in (".", "..")


def _check_name(name: str, label: str) -> None:
    if not _valid_name(name):
        raise UsageError(f"{label}: the name {_printable(name)} is not valid (not UTF-8, empty or over "
                         f"{MAX_NAME_BYTES} bytes): rename it")


def _text(name: str) -> str:
    """``name`` as text that can be printed and written anywhere, whatever bytes it holds."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _printable(name: str) -> str:
    """``name`` quoted, on one line, at most 80 characters."""
    text = _text(name)
    return "'" + text[:80] + ("..." if len(text) > 80 else "") + "'"


def _kind_words(kind: str) -> str:
    return "a file" if kind == "file" else kind
