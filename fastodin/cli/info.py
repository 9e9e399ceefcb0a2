"""``fastodin info FILE [--json]``: what a recording holds.

Channels, streams, flavors, tags, counts, time span, rates, frames and compression ratio come from
the archive index (no data frame is decompressed).  For ODIN recordings the packet counters,
per-set sequence gaps and CRC errors come from the report the recorder writes at close (or, for a
recording that was never closed, from decoding the packets).  Several FILEs are summarised one
after the other (``--json``: an array); ``-`` reads standard input.
"""
from __future__ import annotations

import json
import math
import sys
from typing import Any, Dict, Iterator, List, Optional, TextIO

from .._fmt import iso_time, plural
from ._util import EXIT_DATA, EXIT_OK, human_bytes, table, table_lines
from .sources import add_namespace_argument, each_input, is_odin_archive, odin_records, odin_report, shown

NAME = "info"
HELP = "summarise a recording: channels, counts, time span, rates, gaps, CRC errors, frames, compression"
EXAMPLE = ("fastodin info demo.fastpack.zst\nfastodin info capture.fastpack.zst --json | jq .channels\n"
           "fastodin info part-*.fastpack.zst              # several files: one summary each")


def add_arguments(p: Any) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="archive (.fastpack.zst) or raw FastPack file (.fastpack); several allowed; - = standard input")
    p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    add_namespace_argument(p)


def _fmt_t(t: Optional[float]) -> str:
    if t is None or not isinstance(t, (int, float)) or not math.isfinite(t):
        return "-"
    return f"{t:.6f}"


#: Without a closing report, ``info`` decodes the packets to count gaps only up to this much data.
DECODE_LIMIT = 512 << 20


def odin_summary(ar: Any, limit: Optional[int] = None) -> Optional[Dict[str, Any]]:
    """ODIN counters of an archive: the recorder's report, else computed by decoding (skipped,
    with a note, when the recording holds more than ``limit`` uncompressed bytes)."""
    if not is_odin_archive(ar):
        return None
    rep = odin_report(ar)
    source = "report written at close"
    if rep is None and limit is not None and sum(e.decompressed_size for e in ar.frames) > limit:
        return {"stats": {}, "sets": {}, "source": "no report (recording not closed cleanly); "
                "run fastodin verify for sequence and CRC counts"}
    if rep is None:
        from ..odin.decode import decode as odin_decode

        r = odin_decode(odin_records(ar, channels=["odin/*", 0]))
        rep = dict(r.report)
        source = "decoded (no report: recording not closed cleanly)"
    out = dict(rep)
    out.pop("odin", None)
    out["source"] = source
    return out


def crc_errors(odin: Dict[str, Any]) -> int:
    """Set-id CRC mismatches plus BURST frame CRC errors."""
    st = odin.get("stats") or {}
    n = int(st.get("set_id_mismatches", 0) or 0)
    b = odin.get("burst") or {}
    n += int(b.get("crc_errors", 0) or 0)
    return n


def gaps(odin: Dict[str, Any]) -> Dict[str, int]:
    """Totals of the per-set sequence counters."""
    tot = {"gaps": 0, "lost": 0, "duplicates": 0, "late": 0}
    for s in (odin.get("sets") or {}).values():
        q = s.get("sequence") or {}
        for k in tot:
            tot[k] += int(q.get(k, 0) or 0)
    return tot


def info_dict(ar: Any) -> Dict[str, Any]:
    """``Archive.info()`` plus the ODIN summary (``odin``) and the user metadata count."""
    from ..errors import DataError

    note = None
    try:
        od = odin_summary(ar, DECODE_LIMIT)
    except DataError as e:  # a damaged frame must not hide the index summary
        note = f"ODIN summary unavailable: {' '.join(str(e).split())}"
        od = None
    d = ar.info()     # after the ODIN summary: its notes (an ignored report) are the archive's
    if note is not None:
        d.setdefault("notes", []).append(note)
    if od is not None:
        d["odin"] = od
        d["odin"]["crc_errors"] = crc_errors(od)
        d["odin"]["sequence_totals"] = gaps(od)
    return d


def print_info(d: Dict[str, Any], out: TextIO) -> None:
    """The human-readable form of :func:`info_dict`."""
    fmt = d.get("format")
    kind = f"{fmt} stream of a JPack tree" if d.get("container") == "jpack" else fmt
    if fmt == "zstd":   # nothing to complete: a stream compressed by zstd itself (or another tool)
        parts = ["zstd FastPack stream without fastodin index"] + ([] if d.get("complete") else ["INCOMPLETE"])
    else:
        parts = [kind or "?", "complete" if d.get("complete") else "INCOMPLETE"]
    parts.append(human_bytes(d.get("size", 0)))
    if fmt in ("archive", "zstd"):
        parts.append(plural(d.get("frames", 0), "frame"))
        if d.get("compression_ratio"):
            parts.append(f"compression {d['compression_ratio']:.2f}x "
                         f"({human_bytes(d.get('uncompressed_bytes', 0))} raw)")
        if d.get("preset"):
            parts.append(f"preset {d['preset']}")
    print(f"file:     {shown(str(d.get('path')))}  ({', '.join(parts)})", file=out)
    t0, t1 = (d.get("time") or [None, None])[:2]
    if t0 is not None and t1 is not None:
        print(f"time:     {_fmt_t(t0)} .. {_fmt_t(t1)} s  ({t1 - t0:.3f} s)", file=out)
    print(f"records:  {d.get('records', 0)} in {plural(len(d.get('channels') or {}), 'channel')}", file=out)
    if d.get("tags"):
        print("tags:     " + ", ".join(f"{k}={_tag(k, v)}" for k, v in d["tags"].items()), file=out)
    for sid, s in (d.get("streams") or {}).items():
        extra = f" flavor={s['flavor']}" if s.get("flavor") else ""
        tags = (" tags=" + json.dumps(s["tags"])) if s.get("tags") else ""
        print(f"stream:   {sid}{extra} compression={s.get('compression')} records={s.get('count')}{tags}", file=out)
    def rows() -> Iterator[List[Any]]:
        for name, c in (d.get("channels") or {}).items():
            rate = c.get("rate")
            kind = ""
            if c.get("layout"):
                kind = "layout"
            if c.get("stream"):
                kind = f"{c['stream']}:{c.get('role')}"
            yield [name if name != "0" else "(id-0 metadata)", c.get("count", 0), _fmt_t(c.get("first")),
                   _fmt_t(c.get("last")), f"{rate:.1f}" if rate else "-", human_bytes(c.get("bytes", 0)), kind]

    if d.get("channels"):   # line by line: a file of a million channels is never one string
        for line in table_lines(rows, ["channel", "records", "first s", "last s", "rate Hz", "bytes",
                                       "stream/layout"], right=[1, 2, 3, 4, 5]):
            print(line, file=out)
    od = d.get("odin")
    if od:
        st = od.get("stats") or {}
        g = od.get("sequence_totals") or {}
        print(f"odin:     {plural(st.get('packets', 0), 'packet')} ({st.get('data', 0)} data, "
              f"{plural(st.get('events', 0), 'event')}, "
              f"{plural(st.get('identifiers', 0) + st.get('identifiers_ext', 0), 'identifier')}, "
              f"{plural(st.get('type_descriptors', 0), 'type descriptor')}); "
              f"sequence gaps {g.get('gaps', 0)} (lost {g.get('lost', 0)}, duplicates {g.get('duplicates', 0)}, "
              f"late {g.get('late', 0)}); CRC errors {od.get('crc_errors', 0)}; unknown {st.get('unknown', 0)}, "
              f"malformed {st.get('malformed', 0)}, unresolved {od.get('unresolved', 0)}  [{od.get('source')}]",
              file=out)
        srows = []
        for sid, s in (od.get("sets") or {}).items():
            q = s.get("sequence") or {}
            srows.append([sid, s.get("definition", "-"), s.get("entries", "-"), s.get("packet_size", "-"),
                          "ok" if s.get("set_id_ok", True) else "BAD", q.get("received", 0), q.get("gaps", 0),
                          q.get("lost", 0), q.get("duplicates", 0), q.get("late", 0)])
        if srows:
            print(table(srows, ["set", "definition", "entries", "bytes", "set-id CRC", "received", "gaps", "lost",
                                "dup", "late"], right=[2, 3, 5, 6, 7, 8, 9]), file=out)
    for dmg in d.get("damage") or []:
        rec = dmg.get("records")
        print(f"DAMAGE:   offset {dmg.get('offset')}, {plural(dmg.get('length'), 'byte')}: {dmg.get('reason')}"
              + (f" ({plural(rec, 'record')})" if rec is not None else ""), file=out)
    for note in d.get("notes") or []:
        print(f"note:     {note}", file=out)


def _tag(key: str, v: Any) -> str:
    """A tag value as JSON; a Unix time (a ``*_unix`` tag) also as ISO 8601 UTC.

    >>> _tag("started_unix", 1712345678.5), _tag("site", "lab")
    ('1712345678.5 (2024-04-05T19:34:38.500Z)', '"lab"')
    """
    text = _short(json.dumps(v))
    iso = iso_time(v) if key.endswith("_unix") else None
    return f"{text} ({iso})" if iso else text


def _short(text: str, limit: int = 200) -> str:
    """A tag value for the text view: long ones (an MCAP import's schemas) cut, with their size
    (``--json`` has them whole).

    >>> _short("x" * 300, 10)
    'xxxxxxxxxx... (300 chars)'
    """
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def _jsonable(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if hasattr(o, "tolist"):
        return o.tolist()
    return o


def run(args: Any) -> int:
    results = []
    code = EXIT_OK
    for k, (path, d, err, c) in enumerate(each_input(args.files, NAME, info_dict, namespace=args.namespace)):
        code = max(code, c)
        if err is not None:
            results.append({"path": path, "error": err})
            continue
        results.append(d)
        if not args.json:
            if k:
                print()
            print_info(d, sys.stdout)
        dmg = d.get("damage") or []
        if dmg:
            sys.stdout.flush()
            x = dmg[0]
            more = f" and {plural(len(dmg) - 1, 'more region')}" if len(dmg) > 1 else ""
            print(f"fastodin info: error: {shown(path)} is damaged at offset {x.get('offset')} ({x.get('reason')})"
                  f"{more}; fastodin recover IN OUT saves the readable part", file=sys.stderr)
            code = max(code, EXIT_DATA)
    if args.json:
        doc = results[0] if len(args.files) == 1 else results
        sys.stdout.write(json.dumps(_jsonable(doc), indent=2, default=str) + "\n")
    return code
