"""``fastodin export FILE -o OUT (--csv | --npz | --parquet)``: one table per channel / ODIN set.
(``--jpack DIR``: the Perl tools' JPack tree instead, :mod:`fastodin.cli.jpack`.)

Tables: every ODIN parameter set (``set_0xSSSS``: timestamp, ticks, time, sequence and one column
per entry, structs and arrays flattened), every ODIN event id (``event_N``), and every other
channel (``time`` plus its values typed by its layout, else the payload: hex in CSV, binary in
Parquet, a zero-padded uint8 matrix plus its lengths in npz).  ``--csv`` and ``--parquet`` write
a directory OUT with one file per table; ``--npz`` writes one ``.npz`` whose arrays are named
``TABLE/COLUMN``.  Columns, types and file names: spec/cli-outputs.md.

Everything is written under a temporary name next to OUT (``.OUT.part-XXXX``) and renamed to OUT
when complete, so a failed run (a full disk, a kill) never leaves an OUT that looks finished; an
existing OUT is refused unless ``--force`` (an existing empty directory is used).  FILE ``-``
reads standard input.  A progress line shows on stderr when it is a terminal.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .._fmt import f32
from ..progress import Progress, ProgressCallback, track
from . import jpack
from ._util import EXIT_IO, EXIT_OK, EXIT_USAGE, CliError, human_bytes, need_module, plural
from .sources import add_namespace_argument, is_odin_archive, odin_records, open_input, record_total
from .typed import plain

NAME = "export"
HELP = "export one table per channel / ODIN set to CSV files, one .npz, or Parquet files; or a JPack tree"
EXAMPLE = ("fastodin export demo.fastpack.zst -o demo_csv --csv        # demo_csv/set_0x98A8.csv, ...\n"
           "fastodin export demo.fastpack.zst -o demo.npz --npz\n"
           "fastodin export demo.fastpack.zst -o demo_pq --parquet     # needs: pip install 'fastodin[parquet]'\n"
           "fastodin export demo.fastpack.zst --mcap demo.mcap         # open it in Foxglove\n"
           + jpack.EXAMPLE)


def add_arguments(p: Any) -> None:
    p.add_argument("file", metavar="FILE", help="archive, raw FastPack file, JPack tree or - (standard input)")
    p.add_argument("-o", "--output", metavar="OUT", help="directory (csv, parquet) or .npz file")
    p.add_argument("--force", "-f", action="store_true", help="replace OUT if it exists (a directory only when it "
                   "holds nothing but files of a previous export); with --jpack: replace DIR/data/jpack")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--csv", action="store_true", help="one CSV file per table in directory OUT")
    g.add_argument("--npz", action="store_true", help="one numpy .npz file (arrays TABLE/COLUMN)")
    g.add_argument("--parquet", action="store_true", help="one Parquet file per table in directory OUT (pyarrow)")
    jpack.add_arguments(p, g)
    g.add_argument("--mcap", metavar="OUT.mcap", help="one MCAP file (Foxglove, mcap tools): a channel per fastodin "
                   "channel, typed ones as JSON with a JSON Schema (spec/mcap.md)")
    p.add_argument("--time-offset", type=float, metavar="S", help="--mcap: add S seconds to every time (MCAP "
                   "times are unsigned ns: records at negative times are otherwise left out and counted)")
    p.add_argument("--channel", "-c", action="append", metavar="GLOB", help="only these channels (repeatable)")
    p.add_argument("--start", type=float, metavar="S", help="only records with time >= S")
    p.add_argument("--end", type=float, metavar="S", help="only records with time < S")
    add_namespace_argument(p)
    p.add_argument("--odin-db", metavar="FILE", help="OdinDB .odin JSON for sets announced by 0x01 only "
                   "(overrides the definitions the recording stores)")


def table_name(channel: str) -> str:
    """A file-system-safe table name.

    >>> table_name("odin/set/0x98A8"), table_name("imu/left:config")
    ('set_0x98A8', 'imu_left_config')
    """
    if channel.startswith("odin/set/"):
        return "set_" + channel[len("odin/set/"):].replace("/", "_")
    if channel.startswith("odin/event/"):
        return "event_" + channel[len("odin/event/"):]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", channel).strip("_") or "channel"


def _flatten_struct(prefix: str, arr: np.ndarray, out: Dict[str, np.ndarray]) -> None:
    if arr.dtype.names:
        for n in arr.dtype.names:
            _flatten_struct(f"{prefix}.{n}" if prefix else n, arr[n], out)
    elif arr.ndim > 1:
        flat = arr.reshape(arr.shape[0], -1)
        for k in range(flat.shape[1]):
            out[f"{prefix}[{k}]"] = flat[:, k]
    else:
        out[prefix or "value"] = arr


def _odin_source(ar: Any, sel: List[str], start: Optional[float], end: Optional[float]) -> Any:
    """The selected ODIN records with ``start <= time < end``, plus what their sets need to
    decode typed: every identifier packet of those sets, every type descriptor and the id-0
    metadata (the mapping's stored set definitions and counts_per_second) recorded before
    ``end``, whatever ``start`` and the channel selection say (without them a set decodes as
    unresolved, or untyped)."""
    want = set(sel)
    sets = {n[len("odin/set/"):] for n in want if n.startswith("odin/set/") and not n.endswith("/identifier")}
    sets |= {n[len("odin/unresolved/"):] for n in want if n.startswith("odin/unresolved/")}
    defs = {f"odin/set/{s}/identifier" for s in sets} | {"odin/types"}
    defs &= set(ar.ids)
    if start is None and defs <= want:
        return odin_records(ar, start, end, sorted(want) + [0])
    lo = -math.inf if start is None else start
    return (r for r in ar.records(channels=sorted(want | defs) + [0], end=end)
            if r.id == 0 or r.name in defs or r.time >= lo)


def collect_tables(ar: Any, chans: Any, start: Optional[float], end: Optional[float], odin_db: Any = None,
                   progress: Optional[ProgressCallback] = None) -> Dict[str, Dict[str, np.ndarray]]:
    """``{table: {column: 1-D array}}`` for the selected channels of an open archive;
    ``progress(records read, total)`` as they are read (:mod:`fastodin.progress`)."""
    tables: Dict[str, Dict[str, np.ndarray]] = {}
    done = 0
    ids = ar.channel_ids(chans) if chans is not None else None
    names = {cid: n for cid, n in ar.names.items() if ids is None or cid in ids}
    odin_names = [n for n in names.values() if n.startswith("odin/")]
    if odin_names and is_odin_archive(ar):
        from ..odin.decode import decode as odin_decode

        n_read = [0]   # the last count track() reports = records the decode read

        def seen(n: float, total: Optional[float]) -> None:
            n_read[0] = int(n)
            if progress is not None:
                progress(n, None)

        res = odin_decode(track(_odin_source(ar, odin_names, start, end), seen, every=4096), odin_db=odin_db)
        done = n_read[0]
        for sid, tab in res.items():
            tables[f"set_0x{sid:04X}"] = dict(tab.columns(expand=True))
        for eid, ev in (res.events or {}).items():
            pay = np.empty(len(ev.payloads), object)
            pay[:] = ev.payloads
            tables[f"event_{eid}"] = {"timestamp": ev.timestamp, "ticks": ev.ticks, "time": ev.time,
                                      "sequence": ev.sequence, "payload": pay}
        for k, pk in (getattr(res, "undefined", {}) or {}).items():
            if pk:
                arr = np.empty(len(pk), object)
                arr[:] = pk
                tables[f"unresolved_0x{k:04X}"] = {"packet": arr}
    targets: List[Any] = sorted(set(names.values()))  # a name on several ids (raw files): one table, read once
    if not ar.namespace:     # a stream without namespace: one table per id
        targets = sorted({c for e in ar.frames for c in e.channels if ids is None or c in ids})
    for name in targets:
        if isinstance(name, str) and name.startswith("odin/"):
            continue
        t, v = ar.read(name, start, end)
        done += len(t)
        if progress is not None:
            progress(done, None)
        cols: Dict[str, np.ndarray] = {"time": t}
        if isinstance(v, np.ndarray) and v.dtype.names:
            _flatten_struct("", v, cols)
        elif isinstance(v, np.ndarray) and v.dtype != object:
            if v.ndim == 1:
                cols["value"] = v
            elif v.dtype == np.uint8:
                pay = np.empty(v.shape[0], object)
                pay[:] = [row.tobytes() for row in v]
                cols["payload"] = pay
            else:
                _flatten_struct("value", v, cols)
        else:
            vals = list(v)
            if vals and isinstance(vals[0], dict):
                keys = list(vals[0])
                for k in keys:
                    col = np.empty(len(vals), object)
                    col[:] = [plain(x.get(k)) for x in vals]
                    cols[k] = col
            else:
                col = np.empty(len(vals), object)
                col[:] = vals
                cols["payload"] = col
        tname = table_name(name) if isinstance(name, str) else f"id_{name}"
        if tname in tables:  # two names that sanitise alike ("imu:config", "imu_config"): never overwrite
            k = 2
            while f"{tname}-{k}" in tables:
                k += 1
            tname = f"{tname}-{k}"
        tables[tname] = cols
    return tables


def _cell_strings(col: np.ndarray) -> List[Any]:
    if col.dtype == object:
        return [x.hex() if isinstance(x, (bytes, bytearray)) else plain(x) for x in col.tolist()]
    if col.dtype.kind == "S":
        return [plain(x) for x in col.tolist()]
    if col.dtype.kind == "f" and col.dtype.itemsize < 8:  # float32: its own shortest form, not float64 noise
        return [repr(f32(x)) for x in col]
    if col.dtype.kind == "f":
        return [repr(x) for x in col.tolist()]
    if col.dtype.kind == "V":
        return [bytes(x).hex() for x in col]
    return col.tolist()


_ROWS = 1 << 16   # CSV rows formatted at a time


def write_csv(tables: Dict[str, Dict[str, np.ndarray]], outdir: str,
              progress: Optional[ProgressCallback] = None) -> List[str]:
    """One ``TABLE.csv`` per table in the existing directory ``outdir``; ``progress(rows, total)``."""
    import csv

    files = []
    total = sum(_rows(c) for c in tables.values())
    done = 0
    for tname, cols in tables.items():
        path = os.path.join(outdir, tname + ".csv")
        keys = list(cols)
        n = _rows(cols)
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(keys)
            for a in range(0, n, _ROWS):
                data = [_cell_strings(np.asarray(cols[k])[a:a + _ROWS]) for k in keys]
                w.writerows(zip(*data))
                done += min(_ROWS, n - a)
                if progress is not None:
                    progress(done, total)
        files.append(path)
    return files


def _rows(cols: Dict[str, np.ndarray]) -> int:
    return len(next(iter(cols.values()))) if cols else 0


def _bytes_matrix(items: List[Any]) -> Tuple[np.ndarray, np.ndarray]:
    """Byte strings -> ``(uint8 (n, longest) zero-padded, int64 lengths)``: exact (numpy ``S``
    arrays would drop trailing NUL bytes)."""
    lens = np.fromiter((len(x) for x in items), np.int64, len(items))
    width = int(lens.max(initial=0))
    out = np.zeros((len(items), width), np.uint8)
    if width:
        flat = np.frombuffer(b"".join(bytes(x) for x in items), np.uint8)
        starts = np.cumsum(lens) - lens
        rows = np.repeat(np.arange(len(items)), lens)
        cols = np.arange(flat.shape[0]) - np.repeat(starts, lens)
        out[rows, cols] = flat
    return out, lens


def write_npz(tables: Dict[str, Dict[str, np.ndarray]], path: str,
              progress: Optional[ProgressCallback] = None) -> List[str]:
    """One ``.npz``: ``TABLE/COLUMN`` per column; a column of byte strings (payloads, packets)
    becomes ``TABLE/COLUMN`` uint8 ``(n, longest)`` zero-padded plus ``TABLE/COLUMN.length``
    (int64); other object columns become unicode strings (JSON for lists and dicts)."""
    import orjson

    arrays = {}
    for tname, cols in tables.items():
        for k, v in cols.items():
            v = np.asarray(v)
            if v.dtype == object:
                items = v.tolist()
                if all(isinstance(x, (bytes, bytearray, memoryview)) for x in items):
                    arrays[f"{tname}/{k}"], arrays[f"{tname}/{k}.length"] = _bytes_matrix(items)
                    continue
                v = np.array([x if isinstance(x, str) else orjson.dumps(x, default=repr).decode()
                              for x in items], dtype=str)
            arrays[f"{tname}/{k}"] = v
    np.savez(path, **arrays)   # path ends with .npz: numpy adds nothing
    return [path]


def write_parquet(tables: Dict[str, Dict[str, np.ndarray]], outdir: str,
                  progress: Optional[ProgressCallback] = None) -> List[str]:
    """One ``TABLE.parquet`` per table in the existing directory ``outdir``; ``progress(rows, total)``."""
    pa = need_module("pyarrow", "parquet", "--parquet")
    pq = need_module("pyarrow.parquet", "parquet", "--parquet")
    files = []
    total = sum(_rows(c) for c in tables.values())
    done = 0
    for tname, cols in tables.items():
        arrs = {}
        for k, v in cols.items():
            v = np.asarray(v)
            if v.dtype == object:
                arrs[k] = pa.array([bytes(x) if isinstance(x, (bytes, bytearray)) else x for x in v.tolist()])
            elif v.dtype.kind in "SV":
                arrs[k] = pa.array([bytes(x) for x in v.tolist()], pa.binary())
            else:
                arrs[k] = pa.array(v)
        path = os.path.join(outdir, tname + ".parquet")
        pq.write_table(pa.table(arrs), path)
        files.append(path)
        done += _rows(cols)
        if progress is not None:
            progress(done, total)
    return files


_EXPORT_FILE = re.compile(r".+\.(csv|parquet)$")


def _refuse_existing(out: str, force: bool, is_dir: bool) -> None:
    """An existing OUT is refused unless ``force``; a directory is replaced only when it holds
    nothing but files a previous export writes (never a directory with anything else in it)."""
    if not os.path.lexists(out):
        return
    if is_dir and os.path.isdir(out) and not os.path.islink(out):
        names = os.listdir(out)
        if not names:
            return
        if not force:
            raise CliError(f"{out} exists and is not empty (use --force to replace a previous export)", EXIT_IO)
        alien = [n for n in names if not (_EXPORT_FILE.match(n) and os.path.isfile(os.path.join(out, n)))]
        if alien:
            raise CliError(f"{out} holds {alien[0]!r}, which is not an export table: not replacing it "
                           f"(choose another OUT)", EXIT_IO)
        return
    if not force:
        raise CliError(f"{out} exists (use --force to overwrite)", EXIT_IO)


def publish(out: str, is_dir: bool, write: Callable[[str], List[str]]) -> List[str]:
    """Run ``write(tmp)`` on a temporary name next to ``out`` (a directory when ``is_dir``), then
    rename it to ``out`` (replacing what :func:`_refuse_existing` let through); on any failure the
    temporary is removed and ``out`` is untouched.  Returns the files under their final names."""
    parent = os.path.dirname(os.path.abspath(out))
    base = os.path.basename(os.path.abspath(out))
    if is_dir:
        tmp = tempfile.mkdtemp(prefix=f".{base}.part-", dir=parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.part-", suffix=".npz", dir=parent)
        os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, (0o777 if is_dir else 0o666) & ~mask)   # what mkdir/open would give, not mkdtemp's 0700
    try:
        files = write(tmp)
        old = None
        if is_dir and os.path.isdir(out) and os.listdir(out):
            old = tempfile.mkdtemp(prefix=f".{base}.old-", dir=parent)
            os.replace(out, old)       # the previous export (only export files: checked before)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if is_dir:
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if not is_dir:
        return [out]
    return [os.path.join(out, os.path.relpath(f, tmp)) for f in files]


def run(args: Any) -> int:
    if args.jpack is not None:
        return jpack.run(args)
    if args.mcap:
        from .mcapcli import run_export

        return run_export(args, args.mcap)
    if args.output is None:
        raise CliError("-o OUT is required with --csv, --npz and --parquet", EXIT_USAGE)
    if args.parquet:  # fail before any work when pyarrow is missing
        need_module("pyarrow", "parquet", "--parquet")
    odin_db = None
    if args.odin_db:
        from .sources import check_readable

        check_readable(args.odin_db, random_access=False)
        from ..odin.odindb import load_odin_db

        odin_db = load_odin_db(args.odin_db)
    if args.npz and os.path.isdir(args.output):
        raise CliError(f"{args.output} is a directory; --npz writes one file", EXIT_USAGE)
    if (args.csv or args.parquet) and os.path.exists(args.output) and not os.path.isdir(args.output):
        raise CliError(f"{args.output} exists and is not a directory", EXIT_USAGE)
    parent = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(parent):
        raise CliError(f"cannot write {args.output}: directory {parent} does not exist", EXIT_IO)
    is_dir = not args.npz
    _refuse_existing(args.output, args.force, is_dir)
    chans = [int(c) if c == "0" else c for c in args.channel] if args.channel else None
    with open_input(args.file, allow_damage=False, namespace=args.namespace) as ar:
        ids = ar.channel_ids(chans)
        if chans is not None and not ids:
            raise CliError(f"no channel matches {' '.join(args.channel)}", EXIT_USAGE)
        with Progress("export: reading", record_total(ar, ids, args.start, args.end), "rec") as bar:
            tables = collect_tables(ar, chans, args.start, args.end, odin_db, progress=bar)
    writer = write_csv if args.csv else write_npz if args.npz else write_parquet
    with Progress("export: writing", None, "rows") as bar:
        files = publish(args.output, is_dir, lambda tmp: writer(tables, tmp, progress=bar))
    rows = sum(_rows(c) for c in tables.values())
    size = sum(os.path.getsize(f) for f in files)
    print(f"exported {plural(len(tables), 'table')} ({plural(rows, 'row')}) -> {args.output} "
          f"({plural(len(files), 'file')}, {human_bytes(size)})")
    for name, cols in tables.items():
        print(f"  {name}: {plural(_rows(cols), 'row')} x {plural(len(cols), 'column')}")
    return EXIT_OK
