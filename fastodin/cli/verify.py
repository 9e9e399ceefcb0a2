"""``fastodin verify FILE``: is the recording sound?  Exit 0 yes, 1 no.

Checks: the file opens; an archive has its seek table and consolidated index (a writer that was
killed leaves neither); no damaged regions; every frame decompresses with a matching zstd content
checksum; every frame holds exactly the records, channels, counts, bytes and time range its index
entry says; times are non-decreasing within each channel (and not NaN).  ODIN capture counters
(sequence gaps, CRC errors) are shown but only fail the check with ``--strict``.  Several FILEs are
checked one after the other (exit 0 only when all are sound; ``--json``: an array); ``-`` reads
standard input.  A progress line shows on stderr when it is a terminal.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List

import numpy as np

from .info import _jsonable  # non-finite floats -> null: always valid JSON
from ._util import EXIT_DATA, EXIT_OK, Progress, human_bytes, one_line, plural
from .sources import add_namespace_argument, each_input, shown

NAME = "verify"
HELP = "check checksums, index and ordering; exit code 0 = sound, 1 = problems found"
EXAMPLE = ("fastodin verify cap.fastpack.zst && echo sound\nfastodin verify cap.fastpack.zst --json\n"
           "fastodin verify part-*.fastpack.zst             # exit 0 only when every file is sound")


def add_arguments(p: Any) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="archive or raw FastPack file; several allowed; - = standard input")
    p.add_argument("--strict", action="store_true", help="also fail on ODIN sequence gaps and CRC errors")
    p.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    add_namespace_argument(p)


def verify(ar: Any, strict: bool = False) -> Dict[str, Any]:
    """Check an open archive; returns ``{"sound": bool, "problems": [...], "warnings": [...], ...}``."""
    from ..errors import DataError

    problems: List[str] = []
    warnings: List[str] = []
    if ar.format == "archive" and not ar.complete:
        problems.append("no seek table / consolidated index: the writer did not close the file "
                        "(crashed or still recording); readers rebuild the index by scanning")
    for d in ar.damage:
        rec = d.records
        problems.append(f"damaged region at offset {d.offset} ({plural(d.length, 'byte')}): {d.reason}"
                        + (f"; {plural(rec, 'record')} lost" if rec else ""))
    if getattr(ar, "meta_ignored", 0):
        problems.append(f"{ar.meta_ignored} writer metadata records unreadable or of the wrong JSON types "
                        "(ignored: their channels read untyped)")
    last_t: Dict[int, float] = {}
    reversals: Dict[int, int] = {}
    frames_ok = 0
    records = 0
    prog = Progress("verify", max(len(ar.frames), 1), " frames")
    for k, e in enumerate(ar.frames):
        what = e.describe() if hasattr(e, "describe") else f"frame {e.frame_no}"
        try:
            data = ar.frame_data(e)
            t, i, o, n = ar.frame_columns(e, data)
        except DataError as ex:
            m = one_line(ex)
            problems.append(m if m.startswith(what) else f"{what}: {m}")
            continue
        ok = True
        if t.shape[0]:
            if np.isnan(t).any():
                problems.append(f"{what}: {plural(int(np.isnan(t).sum()), 'record')} with a NaN time")
                ok = False
            # per-channel counts, bytes, time ranges against the index entry
            order = np.argsort(i, kind="stable")
            si = i[order]
            starts = np.flatnonzero(np.concatenate(([True], si[1:] != si[:-1])))
            ends = np.append(starts[1:], si.shape[0])
            got: Dict[int, tuple] = {}
            for a, b in zip(starts.tolist(), ends.tolist()):
                cid = int(si[a])
                sel = order[a:b]
                ct = t[sel]
                got[cid] = (b - a, int(n[sel].astype(np.int64).sum()), float(ct.min()), float(ct.max()))
                # ordering within the channel, and against the previous frame of the channel
                if ct.shape[0] > 1:
                    rv = int((np.diff(ct) < 0).sum())
                    if rv:
                        reversals[cid] = reversals.get(cid, 0) + rv
                prev = last_t.get(cid)
                if prev is not None and ct[0] < prev:
                    reversals[cid] = reversals.get(cid, 0) + 1
                last_t[cid] = float(ct[-1])
            if ar.format == "archive":
                idx = {int(c): tuple(v) for c, v in e.channels.items()}
                for cid in sorted(set(idx) | set(got)):
                    a, b = idx.get(cid), got.get(cid)
                    name = ar.names.get(cid, cid)
                    if a is None or b is None or a[0] != b[0] or a[1] != b[1]:
                        problems.append(f"{what}: channel {name!r}: index says "
                                        f"{(a or (0, 0))[0]} records / {(a or (0, 0))[1]} bytes, frame holds "
                                        f"{(b or (0, 0))[0]} / {(b or (0, 0))[1]}")
                        ok = False
                    elif not (a[2] == b[2] and a[3] == b[3]):
                        problems.append(f"{what}: channel {name!r}: index time range {a[2]}..{a[3]}, "
                                        f"frame holds {b[2]}..{b[3]}")
                        ok = False
        records += int(t.shape[0])
        frames_ok += ok
        prog.update(k + 1)
    prog.close()
    for cid, rv in sorted(reversals.items()):
        problems.append(f"channel {ar.names.get(cid, cid)!r}: time goes backwards {plural(rv, 'time')}")
    odin = None
    try:
        from .info import crc_errors, gaps, odin_summary

        odin = odin_summary(ar)
    except Exception as ex:  # a broken ODIN layer must not hide the file checks
        warnings.append(f"ODIN summary unavailable: {one_line(ex)}")
    warnings.extend(getattr(ar, "notes", []) or [])     # after the ODIN summary: an ignored report too
    if odin:
        g = gaps(odin)
        crc = crc_errors(odin)
        st = odin.get("stats") or {}
        msg = (f"ODIN capture: sequence gaps {g['gaps']} (lost {g['lost']}), duplicates {g['duplicates']}, "
               f"late {g['late']}, CRC errors {crc}, malformed {st.get('malformed', 0)}, "
               f"unknown {st.get('unknown', 0)}")
        bad = g["gaps"] or g["duplicates"] or g["late"] or crc or st.get("malformed")
        if bad and strict:
            problems.append(msg)
        elif bad:
            warnings.append(msg)
    return {"path": ar.path, "format": ar.format, "sound": not problems, "problems": problems,
            "warnings": warnings, "frames": len(ar.frames), "frames_ok": frames_ok, "records": records,
            "size": ar.size, "complete": ar.complete}


def run(args: Any) -> int:
    results = []
    code = EXIT_OK
    for path, res, err, c in each_input(args.files, NAME, lambda ar: verify(ar, strict=args.strict),
                                          namespace=args.namespace):
        code = max(code, c)
        if err is not None:
            results.append({"path": path, "sound": False, "error": err})
            continue
        results.append(res)
        if not res["sound"]:
            code = max(code, EXIT_DATA)
        if not args.json:
            for p in res["problems"]:
                print(f"PROBLEM: {p}")
            for w in res["warnings"]:
                print(f"note: {w}")
            state = "SOUND" if res["sound"] else f"NOT SOUND ({plural(len(res['problems']), 'problem')})"
            print(f"{state}: {shown(res['path'])} ({res['format']}, {human_bytes(res['size'])}, "
                  f"{plural(res['frames'], 'frame')}, {plural(res['records'], 'record')} checked)")
    if args.json:
        doc = results[0] if len(args.files) == 1 else results
        sys.stdout.write(json.dumps(_jsonable(doc), indent=2) + "\n")
    return code
