"""The JPack file format as fastpack-split writes it: names, limits, the chunkLoader wrapping.

One home for every rule of the format (spec/jpack.md); the writer and the reader call these.

>>> header("none", 10, 0, "out/index.html")[:62]
b'chunkLoader.decodeData({jpack_path:document.currentScript.src,'
>>> opts, body = parse_header(header("deflate", 1, 2, "d/index.html") + b'QQ=="\\n});\\n', file="x.jpack")
>>> opts["jpack_compression"], opts["html_container"], body
('deflate', 'd/index.html', 289)
"""
from __future__ import annotations

import os
import re
from typing import Dict, Optional, Tuple

from ..errors import JPackError

__all__ = ["PREFIX", "DEFAULT_MESSAGE_LIMIT", "DEFAULT_BYTE_LIMIT", "COMPRESSIONS", "OPTION_ORDER", "CALL",
           "FOOTER", "MAX_HEADER", "dir_name", "file_name", "parse_name", "header", "parse_header",
           "compression_of", "js_string", "container_of"]

#: Where the sets live, relative to the html root (fastpack-split's ``--prefix`` default).
PREFIX = "data/jpack"
#: fastpack-split's defaults: a new file after this many messages (plus one, see spec) ...
DEFAULT_MESSAGE_LIMIT = 1_000_000
#: ... or before the FastPack bytes of a file would reach this many.
DEFAULT_BYTE_LIMIT = 24_000_000
COMPRESSIONS = ("none", "deflate")
#: The options object, in the fixed order we write it (fastpack-split: Perl hash order, random).
#: ``html_container`` (a user path) goes last: Data::JPack's decoder splits the object on "," and
#: ":", so odd characters in it can disturb no other key.
OPTION_ORDER = ("jpack_type", "jpack_compression", "jpack_seq", "prefix", "message_limit", "byte_limit",
                "read_size", "write_size", "group", "html_container")
CALL = b"chunkLoader.decodeData("
_OPEN = CALL + b"{jpack_path:document.currentScript.src,"
_CLOSE = b'}, function(){ return "'
#: After the base64 data string.
FOOTER = b'"\n});\n'
#: The options object must end within this many bytes of the start of a file.
MAX_HEADER = 1 << 16

_NAME = re.compile(r"[0-9a-fA-F]{32}\Z")


def dir_name(n: int) -> str:
    """Name of set ``n``'s directory.

    >>> dir_name(1)
    '00000000000000000000000000000001'
    """
    return f"{n:032x}"


def file_name(n: int) -> str:
    """Name of file ``n`` of a set.

    >>> file_name(10)
    '0000000000000000000000000000000a.jpack'
    """
    return f"{n:032x}.jpack"


def parse_name(name: str, ext: str = "") -> Optional[int]:
    """The number a set directory (``ext=""``) or file (``ext=".jpack"``) name stands for, else None.
    Hex digits of either case are accepted (the browser loader asks for upper case, fastpack-split
    writes lower case).

    >>> parse_name("0000000000000000000000000000000A.jpack", ".jpack"), parse_name("x.jpack", ".jpack")
    (10, None)
    """
    if ext:
        if not name.endswith(ext):
            return None
        name = name[:-len(ext)]
    return int(name, 16) if _NAME.match(name) else None


def js_string(value: str) -> bytes:
    """``value`` as the inside of a JavaScript double-quoted string: the bytes themselves (what
    fastpack-split writes) except ``\\``, ``"``, control characters, U+2028 and U+2029, which are
    escaped so the file stays valid JavaScript.

    >>> js_string('a"b\\\\c'), js_string("x\\ny")
    (b'a\\\\"b\\\\\\\\c', b'x\\\\u000ay')
    """
    raw = os.fsencode(value)
    raw = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    raw = re.sub(rb"[\x00-\x1f\x7f]", lambda m: b"\\u%04x" % m.group()[0], raw)
    return raw.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")


def container_of(root: str) -> str:
    """The ``html_container`` value for the tree under directory ``root`` (what fastpack-split
    records when given ``--html_container ROOT/index.html``).

    >>> container_of("out/"), container_of("/")
    ('out/index.html', '/index.html')
    """
    root = root.rstrip("/") if root.strip("/") else ""
    return f"{root}/index.html"


def header(compression: str, message_limit: int, byte_limit: int, html_container: str) -> bytes:
    """Everything before the base64 data string of a ``.jpack`` file written like fastpack-split's."""
    opts = {"jpack_type": "data", "jpack_compression": compression, "jpack_seq": "0", "prefix": PREFIX,
            "message_limit": str(message_limit), "byte_limit": str(byte_limit), "read_size": "32768",
            "write_size": "32768", "group": "default", "html_container": html_container}
    return _OPEN + b", ".join(k.encode() + b':"' + js_string(opts[k]) + b'"' for k in OPTION_ORDER) + _CLOSE


_WS = rb"[ \t\r\n]*"
_KEY = re.compile(_WS + rb'(?:([A-Za-z_$][A-Za-z0-9_$]*)|"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\')'
                  + _WS + b":" + _WS)
_VAL = re.compile(rb'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\'|([^,}\s]+)')
_SEP = re.compile(_WS + rb"([,}])")
_PRE = re.compile(_WS + re.escape(CALL) + _WS + rb"\{")
_POST = re.compile(_WS + rb"," + _WS + rb"function" + _WS + rb"\(" + _WS + rb"\)" + _WS + rb"\{" + _WS
                   + rb"return" + _WS + b'"')
_ESC = re.compile(rb"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)", re.S)
_SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"v": b"\v", b"0": b"\0"}


def _unescape(raw: bytes) -> str:
    def one(m: "re.Match[bytes]") -> bytes:
        e = m.group(1)
        if e[:1] in (b"u", b"x") and len(e) > 1:
            return chr(int(e[1:], 16)).encode("utf-8", "surrogatepass")
        return _SIMPLE.get(e, e)

    return _ESC.sub(one, raw).decode("utf-8", "surrogateescape")


def parse_header(head: bytes, *, file: str) -> Tuple[Dict[str, str], int]:
    """``(options, offset of the base64 data string)`` of a ``.jpack`` file whose first bytes are
    ``head`` (at least :data:`MAX_HEADER` of them, or the whole file).  Raises
    :class:`~fastodin.errors.JPackError` naming ``file`` when they are not a chunkLoader call.
    Values that are not string literals (``document.currentScript.src``) are kept as written."""
    m = _PRE.match(head)
    if m is None:
        raise JPackError("not a JPack chunk: it does not start with 'chunkLoader.decodeData({'", file=file, offset=0)
    pos = m.end()
    opts: Dict[str, str] = {}
    end = _SEP.match(head, pos)
    while end is None or end.group(1) != b"}":
        k = _KEY.match(head, pos)
        v = _VAL.match(head, k.end()) if k is not None else None
        end = _SEP.match(head, v.end()) if v is not None else None
        if k is None or v is None or end is None:
            if len(head) >= MAX_HEADER:
                raise JPackError("not a JPack chunk: the options object does not end within the first "
                                 f"{MAX_HEADER} bytes", file=file, offset=pos, limit=MAX_HEADER)
            raise JPackError(f"not a JPack chunk: bad options object at byte {pos}", file=file, offset=pos)
        if k.group(1) is not None:
            key = k.group(1).decode("ascii")
        else:
            key = _unescape(k.group(2) if k.group(2) is not None else k.group(3))
        raw = v.group(1) if v.group(1) is not None else v.group(2)
        opts[key] = _unescape(raw) if raw is not None else v.group(3).decode("utf-8", "surrogateescape")
        pos = end.end()
    pos = end.end()
    p = _POST.match(head, pos)
    if p is None:
        raise JPackError("not a JPack chunk: the options object is not followed by ', function(){ return \"'",
                         file=file, offset=pos)
    return opts, p.end()


def compression_of(opts: Dict[str, str], *, file: str) -> str:
    """``"none"`` or ``"deflate"`` from a chunk's options (absent: none, as both decoders read it;
    either case, as the browser's decoder accepts)."""
    c = opts.get("jpack_compression", "none")
    if c.lower() not in COMPRESSIONS:
        raise JPackError(f"unknown jpack_compression {c!r} (known: none, deflate)", file=file)
    return c.lower()
