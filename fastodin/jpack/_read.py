"""Reading JPack trees and ``.jpack`` files back into one FastPack stream, damage reported per file.

>>> import os, tempfile, fastodin
>>> d = tempfile.mkdtemp()
>>> src = os.path.join(d, "s.fastpack")
>>> _ = open(src, "wb").write(fastodin.encode([(i * 0.1, "x", b"abc") for i in range(5)], namespace=True))
>>> _ = fastodin.jpack.write_tree(src, os.path.join(d, "out"), message_limit=2, compress=True)
>>> with open_tree(os.path.join(d, "out")) as ar:
...     [bytes(r.payload) for r in ar.records()][:2], ar.container
([b'abc', b'abc'], 'jpack')
"""
from __future__ import annotations

import binascii
import io
import mmap
import os
import re
import tempfile
import zlib
from typing import IO, TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from ..columns import scan
from ..errors import JPackError, LimitError
from ..wire import HEADER
from ._format import CALL, MAX_HEADER, PREFIX, compression_of, parse_header, parse_name

if TYPE_CHECKING:
    from ..archive.reader import Archive

__all__ = ["open_tree", "read_file", "decode_file", "is_jpack", "tree_files", "Tree", "DEFAULT_MAX_CHUNK_SIZE",
           "INFLATE_RATIO"]

#: A deflate chunk may inflate to this many bytes, or :data:`INFLATE_RATIO` times its file's size if
#: that is more (more is a LimitError for that file): a few-KB hostile file cannot cost GBs, and a
#: big chunk of ours (``--compress --byte-limit 0``) still reads.  fastpack-split's chunks hold at
#: most 24 MB by default.  "none" chunks decode to 3/4 of their size: no limit needed.
DEFAULT_MAX_CHUNK_SIZE = 64 << 20
INFLATE_RATIO = 64
_BLOCK = 1 << 20              # bytes of a .jpack read at a time (a multiple of 4)
_PIECE = 1 << 20              # most bytes one inflate call may return
_TAIL = 4096                  # most bytes accepted after the data string's closing quote
_WINDOW = 4 << 20             # bytes of decoded stream scanned at a time
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/=]")
_FOOT = re.compile(rb'[ \t\r\n]*\}[ \t\r\n]*\)[ \t\r\n]*;?[ \t\r\n]*\Z')
#: inserted between sets (separate streams): a namespace reset, which every reader hides
_RESET = HEADER.pack(0.0, 0, 0)


def is_jpack(path: Union[str, "os.PathLike[str]"]) -> bool:
    """Whether :func:`fastodin.open` reads ``path`` as JPack: a directory, a ``*.jpack`` file, or a
    file that starts with ``chunkLoader.decodeData(``.

    >>> is_jpack(".")
    True
    """
    p = os.fspath(path)
    if os.path.isdir(p):
        return True
    if p.lower().endswith(".jpack"):
        return True
    try:
        with open(p, "rb") as f:
            return f.read(256).lstrip().startswith(CALL)
    except OSError:
        return False


class _JPackLimitError(JPackError, LimitError):
    """A chunk over a size limit (both a JPackError naming the file and a LimitError)."""


class _Sink:
    """Decoded (and inflated) bytes of one chunk go to ``out``, at most ``limit`` of them."""

    __slots__ = ("out", "limit", "n", "z", "file")

    def __init__(self, out: IO[bytes], limit: int, deflate: bool, file: str) -> None:
        self.out = out
        self.limit = limit
        self.n = 0
        self.z = zlib.decompressobj(-15) if deflate else None
        self.file = file

    def _put(self, b: bytes) -> None:
        self.n += len(b)
        if self.n > self.limit:
            raise _JPackLimitError(f"inflates to more than {self.limit} bytes (max_chunk_size, or {INFLATE_RATIO} "
                                   "times the file's size)", file=self.file, limit=self.limit)
        self.out.write(b)

    def write(self, raw: bytes) -> None:
        if self.z is None:
            self._put(raw)
            return
        buf = raw
        while True:
            try:
                piece = self.z.decompress(buf, _PIECE)
            except zlib.error as e:
                raise JPackError(f"bad deflate data ({e})", file=self.file) from None
            if piece:
                self._put(piece)
            buf = self.z.unconsumed_tail
            if not buf and len(piece) < _PIECE:
                return

    def finish(self) -> None:
        if self.z is None:
            return
        if not self.z.eof:
            raise JPackError("bad deflate data (the deflate stream ends early: file cut?)", file=self.file)
        if self.z.unused_data:
            raise JPackError(f"bad deflate data ({len(self.z.unused_data)} bytes after the end of the deflate stream)",
                             file=self.file)


def decode_file(path: Union[str, "os.PathLike[str]"], out: IO[bytes], *,
                max_size: int = DEFAULT_MAX_CHUNK_SIZE) -> Tuple[int, str]:
    """Write the FastPack bytes held by the ``.jpack`` file ``path`` to ``out``; returns ``(bytes
    written, compression)``.  Streams: memory stays at a few MiB whatever the sizes.  Raises
    :class:`~fastodin.errors.JPackError` naming the file (not a chunkLoader call, bad base64, bad
    deflate, cut file, a deflate chunk inflating to more than ``max(max_size, INFLATE_RATIO * its
    size)``); ``out`` may then hold part of the chunk."""
    file = os.fspath(path)
    with open(file, "rb") as f:
        head = f.read(MAX_HEADER)
        opts, pos = parse_header(head, file=file)
        comp = compression_of(opts, file=file)
        limit = max(max_size, INFLATE_RATIO * os.fstat(f.fileno()).st_size) if comp == "deflate" else 1 << 62
        sink = _Sink(out, limit, comp == "deflate", file)
        block = head[pos:]
        at = pos                       # offset in the file of block[0]
        carry = b""
        pads = 0
        while True:
            q = block.find(b'"')
            text = block if q < 0 else block[:q]
            bad = _NOT_B64.search(text)
            if bad is not None:
                ch = text[bad.start():bad.start() + 1]
                raise JPackError(f"bad base64: byte {ch!r} at offset {at + bad.start()}", file=file,
                                 offset=at + bad.start())
            k = text.find(b"=")
            if pads or k >= 0:
                rest = text if pads else text[k:]
                if rest.strip(b"="):
                    o = at + (0 if pads else k) + len(rest) - len(rest.lstrip(b"="))
                    raise JPackError(f"bad base64: data after the '=' padding at offset {o}", file=file, offset=o)
                pads += len(rest)
                if pads > 2:
                    raise JPackError(f"bad base64: more than two '=' at the end (offset {at + len(text) - pads})",
                                     file=file, offset=at + len(text) - pads)
            carry += text
            whole = len(carry) - len(carry) % 4
            if whole:
                try:
                    raw = binascii.a2b_base64(carry[:whole])
                except binascii.Error as e:     # '=' after a lone character ("AAAAA===" cut to quads)
                    raise JPackError(f"bad base64 ({e}) before offset {at + len(text)}", file=file,
                                     offset=at + len(text)) from None
                sink.write(raw)
                carry = carry[whole:]
            if q >= 0:
                break
            at += len(block)
            block = f.read(_BLOCK)
            if not block:
                raise JPackError(f"file ends inside the data string (cut at offset {at}?)", file=file, offset=at)
        if carry:
            raise JPackError(f"bad base64: the data string's length is not a multiple of 4 (ends at offset {at + q})",
                             file=file, offset=at + q)
        tail = block[q + 1:]
        if len(tail) <= _TAIL:
            tail += f.read(_TAIL + 1 - len(tail))
        if not _FOOT.match(tail):
            raise JPackError(f"not a JPack chunk: the data string is not followed by '}});' at offset {at + q + 1}",
                             file=file, offset=at + q + 1)
        sink.finish()
    return sink.n, comp


def read_file(path: Union[str, "os.PathLike[str]"], *, max_size: int = DEFAULT_MAX_CHUNK_SIZE) -> bytes:
    """The FastPack bytes held by one ``.jpack`` file (see :func:`decode_file`).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "0.jpack")
    >>> from fastodin.jpack._format import header, FOOTER
    >>> _ = open(p, "wb").write(header("none", 0, 0, "index.html") + b"AAAA" + FOOTER)
    >>> read_file(p)
    b'\\x00\\x00\\x00'
    """
    buf = io.BytesIO()
    decode_file(path, buf, max_size=max_size)
    return buf.getvalue()


class Tree:
    """The ``.jpack`` files of a JPack tree in set and sequence order (:func:`tree_files`).

    ``items``: ``(set, sequence, path, problem)`` in reading order; ``problem`` is a
    :class:`~fastodin.errors.JPackError` for a file or set missing from a run that starts at 0,
    or a second file for the same number (other letter case), else None.  ``ignored``: other
    entries (not 32 hex digits).  ``n_sets``: set directories found."""

    __slots__ = ("root", "items", "ignored", "n_sets")

    def __init__(self, root: str) -> None:
        self.root = root
        self.items: List[Tuple[int, int, str, Optional[JPackError]]] = []
        self.ignored: List[str] = []
        self.n_sets = 0


def _numbered(d: str, ext: str, want_dir: bool, tree: Tree, s: int) -> Dict[int, str]:
    out: Dict[int, str] = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        n = parse_name(name, ext)
        if n is None or os.path.isdir(p) != want_dir:
            if not name.startswith("."):   # .part / .old names of an unfinished write
                tree.ignored.append(p)
            continue
        if n in out:
            tree.items.append((s, n, p, JPackError(f"a second entry for number {n} (besides {out[n]}); ignored",
                                                   file=p)))
            continue
        out[n] = p
    return out


def _set_items(files: Dict[int, str], d: str, s: int, tree: Tree) -> None:
    for q in range(max(files, default=-1) + 1):
        f = files.get(q)
        if f is None:
            f = os.path.join(d, f"{q:032x}.jpack")
            tree.items.append((s, q, f, JPackError("missing from its set (the browser loader stops at this gap)",
                                                   file=f)))
        else:
            tree.items.append((s, q, f, None))


def tree_files(path: Union[str, "os.PathLike[str]"]) -> Tree:
    """The ``.jpack`` files under ``path`` — a tree root (holding ``data/jpack``), a prefix
    directory (holding set directories), one set directory, or one ``.jpack`` file — in set and
    sequence order, with the gaps in the numbering (see :class:`Tree`)."""
    p = os.fspath(path)
    tree = Tree(p)
    if not os.path.isdir(p):
        tree.items.append((0, 0, p, None))
        tree.n_sets = 1
        return tree
    base = os.path.join(p, PREFIX)
    is_root = os.path.isdir(base)
    if not is_root:
        base = p
    sets = _numbered(base, "", True, tree, -1)
    if not sets:
        files = _numbered(base, ".jpack", False, tree, 0)
        if not files and not is_root:
            raise JPackError(f"not a JPack tree: no {PREFIX}/ directory, no set directories and no .jpack files "
                             "in it", file=p)
        if files:
            tree.ignored = []
            tree.n_sets = 1
            _set_items(files, base, 0, tree)
        return tree
    tree.n_sets = len(sets)
    for s in range(max(sets) + 1):
        d = sets.get(s)
        if d is None:
            d = os.path.join(base, f"{s:032x}")
            tree.items.append((s, -1, d, JPackError("missing set directory (the browser loader stops here)", file=d)))
            continue
        _set_items(_numbered(d, ".jpack", False, tree, s), d, s, tree)
    return tree


def open_tree(path: Union[str, "os.PathLike[str]"], *, strict: bool = False,
              max_chunk_size: int = DEFAULT_MAX_CHUNK_SIZE, max_frame_size: Optional[int] = None) -> "Archive":
    """Open a JPack tree (or one ``.jpack`` file) as an :class:`~fastodin.Archive` of its FastPack
    stream: the chunks decoded in set and sequence order (none and deflate), one set after the
    other (with a namespace reset in between: each set is a stream of its own).  This is what
    :func:`fastodin.open` does for a directory or a ``.jpack`` file.

    Damage is per file: a ``.jpack`` that is not a chunkLoader call, has bad base64 or bad deflate
    data, inflates to more than ``max_chunk_size`` (see :func:`decode_file`), or is missing from
    its set's sequence, is listed in ``Archive.damage`` (``reason`` names the file; ``offset`` is
    where its bytes are missing from the stream; ``length`` is the bad file's size) and every good
    chunk is still read.  ``strict=True`` raises the first :class:`~fastodin.errors.JPackError` instead.  When
    there were chunks and none can be read, the first error is raised either way.  The stream is
    decoded into an unlinked temporary file (``TMPDIR``): memory stays bounded whatever the sizes.
    ``Archive.container`` is ``"jpack"``.
    """
    from ..archive.reader import DEFAULT_MAX_FRAME_SIZE, Archive, Damage

    mfs = DEFAULT_MAX_FRAME_SIZE if max_frame_size is None else max_frame_size
    tree = tree_files(path)
    damage: List[Damage] = []
    errors: List[JPackError] = []
    comps: Dict[str, int] = {}

    def lose(err: JPackError, at: int, size: int) -> None:
        if strict:
            raise err
        errors.append(err)
        damage.append(Damage(at, size, str(err)))

    fd, tmp = tempfile.mkstemp(prefix="fastodin-jpack-", suffix=".fastpack")
    try:
        with os.fdopen(fd, "w+b") as out:
            boundary = 0                 # stream offset of the next record start
            cur_set = None
            last = tree.root
            for s, _q, f, problem in tree.items:
                if s != cur_set and problem is None:
                    boundary = _end_set(out, boundary, last, lose)
                    if boundary:
                        out.write(_RESET)
                        boundary += len(_RESET)
                    cur_set = s
                if problem is not None:
                    lose(problem, boundary, 0)
                    continue
                last = f
                start = out.tell()
                try:
                    _n, comp = decode_file(f, out, max_size=max_chunk_size)
                    boundary = _records_end(out, boundary, mfs, f)
                except JPackError as err:
                    if start > boundary:
                        err = type(err)(f"{err.reason}; the {start - boundary} bytes of a record begun in the "
                                        "chunk before are dropped with it", file=err.file, offset=err.offset,
                                        limit=err.limit)
                    out.truncate(boundary)
                    out.seek(boundary)
                    lose(err, boundary, _size(f))
                    continue
                comps[comp] = comps.get(comp, 0) + 1
            _end_set(out, boundary, last, lose)
        if errors and not comps:
            raise errors[0]
        ar = Archive(tmp, max_frame_size=mfs)
    finally:
        try:
            os.unlink(tmp)
        except OSError:  # pragma: no cover - already gone / non-POSIX
            pass
    ar.path = os.fspath(path)
    ar.container = "jpack"
    ar.damage[:0] = damage
    if damage:
        ar.complete = False
    n_files = sum(1 for it in tree.items if it[3] is None)
    kinds = ", ".join(f"{c} {n}" for n, c in sorted(comps.items())) or "none readable"
    ar.notes.insert(0, f"JPack: {tree.n_sets} set(s), {n_files} .jpack file(s) ({kinds}), read as one FastPack "
                       f"stream of {ar.size} bytes" + ("; a namespace reset between sets" if tree.n_sets > 1 else ""))
    if tree.ignored:
        ar.notes.append(f"JPack: ignored {len(tree.ignored)} other entries (e.g. {tree.ignored[0]})")
    return ar


def _end_set(out: IO[bytes], boundary: int, last: str, lose: Any) -> int:
    """At the end of a set: a record cut by the end of its last chunk is lost (reported)."""
    end = out.tell()
    if end > boundary:
        out.truncate(boundary)
        out.seek(boundary)
        lose(JPackError(f"the set ends inside a record ({end - boundary} bytes dropped)", file=last), boundary,
             end - boundary)
    return boundary


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _records_end(out: IO[bytes], boundary: int, max_record_size: int, file: str) -> int:
    """Stream offset after the last whole record from ``boundary`` to the end of ``out`` (a chunk
    may end inside a record: the next chunk continues it)."""
    out.flush()
    end = out.tell()
    if end == boundary:
        return boundary
    mm = mmap.mmap(out.fileno(), end, access=mmap.ACCESS_READ)
    try:
        got, over = _scan_end(mm, boundary, end, max_record_size)
    finally:
        mm.close()
    if over is not None:
        raise _JPackLimitError(f"a record claims {over} bytes > max_frame_size={max_record_size}", file=file,
                               length=over, limit=max_record_size)
    return got


def _scan_end(buf: Any, start: int, end: int, max_record_size: int) -> Tuple[int, Optional[int]]:
    """``(end of the whole records, None)``, or ``(-1, claimed length)`` for a header over the limit
    (returned, not raised: no traceback may keep views of ``buf`` alive).  Scans :data:`_WINDOW`
    bytes at a time, so memory stays bounded however many records a chunk holds."""
    pos = start
    try:
        while pos < end:
            got = scan(buf, pos, min(end, pos + _WINDOW), max_record_size=max_record_size).end
            if got == pos:      # a record bigger than the window, or one cut by the end
                got = scan(buf, pos, end, max_record_size=max_record_size, max_records=1).end
                if got == pos:
                    break
            pos = got
    except LimitError as e:
        return -1, int(e.length or 0)
    return pos, None
