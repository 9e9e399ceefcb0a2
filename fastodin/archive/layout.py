"""Record layouts: describe a stream's payloads in Python, rebuild numpy arrays from JSON.

A :class:`Layout` is an ordered list of fields.  Fixed-size fields (images, fixed audio blocks,
vectors, scalars, fixed arrays, fixed strings, nested structs) form one little-endian numpy
structured dtype packed at the start of the payload; variable-size fields (strings, bytes, audio
blocks of any length) follow in field order, each as ``u32 length | bytes``.  ``to_json()`` is
stored in the stream definition, so a reader rebuilds arrays with :meth:`Layout.from_json` only.

>>> lay = Layout().vector3d("accel").scalar("temp", "float32")
>>> p = lay.pack((1.0, 2.0, 3.0), 25.5)
>>> len(p), lay.dtype.itemsize
(28, 28)
>>> rec = Layout.from_json(lay.to_json()).unpack(p)
>>> rec["accel"].tolist(), float(rec["temp"])
([1.0, 2.0, 3.0], 25.5)
"""
from __future__ import annotations

import struct
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from numpy.lib.format import descr_to_dtype, dtype_to_descr

from ..errors import DataError, UsageError

__all__ = ["Layout", "PIXEL_FORMATS", "SAMPLE_FORMATS"]

#: pixel format -> (numpy dtype, channels); shape of an image field is (height, width[, channels]).
PIXEL_FORMATS: Dict[str, Tuple[str, int]] = {
    "grey8": ("u1", 1), "gray8": ("u1", 1), "grey16": ("<u2", 1), "rgb8": ("u1", 3),
    "bgr8": ("u1", 3), "rgba8": ("u1", 4), "bgra8": ("u1", 4), "depth32f": ("<f4", 1),
    "rgb32f": ("<f4", 3),
}
#: audio sample format -> numpy dtype.
SAMPLE_FORMATS: Dict[str, str] = {
    "uint8": "u1", "int16": "<i2", "s16": "<i2", "int24": "V3", "int32": "<i4", "s32": "<i4",
    "float32": "<f4", "f32": "<f4", "float64": "<f8", "f64": "<f8",
}
_U32 = struct.Struct("<I")


def _le(dt: np.dtype) -> np.dtype:
    return dt.newbyteorder("<") if dt.byteorder == ">" or (dt.byteorder == "=" and dt.itemsize > 1) else dt


def _descr_from_json(d: Any) -> Any:
    if isinstance(d, str):
        return d
    out = []
    for f in d:
        name = f[0]
        sub = _descr_from_json(f[1]) if isinstance(f[1], list) else f[1]
        out.append((name, sub, tuple(f[2])) if len(f) > 2 else (name, sub))
    return out


def _json_descr(d: Any) -> Any:
    if isinstance(d, str):
        return d
    return [[f[0], _json_descr(f[1]) if isinstance(f[1], list) else f[1]]
            + ([list(f[2])] if len(f) > 2 else []) for f in d]


def _no_objects(dt: np.dtype, what: str, error: Any) -> None:
    """Refuse dtypes holding Python objects: their bytes would be pointers."""
    if dt.hasobject:
        raise error(f"{what}: object dtype {dt} (payload bytes are not Python objects)")


#: variable-length field kinds (their bytes follow the fixed part as ``u32 length | bytes``)
_VARIABLE_KINDS = ("string", "bytes", "audio")


def _field_from_json(f: Any) -> Dict[str, Any]:
    """One stored field description, checked enough that packing and unpacking cannot fail on it."""
    if not isinstance(f, dict) or not isinstance(f.get("name"), str):
        raise TypeError(f"a field is a map with a str 'name', not {f!r:.60}")
    f = dict(f)
    if f.get("variable"):
        if f.get("kind") not in _VARIABLE_KINDS:
            raise ValueError(f"variable field {f['name']!r}: kind {f.get('kind')!r:.40} is not one of "
                             f"{_VARIABLE_KINDS}")
        if f["kind"] == "audio":
            dt = np.dtype(f.get("dtype"))
            _no_objects(dt, f"field {f['name']!r}", DataError)
            ch = f.get("channels")
            if not isinstance(ch, int) or isinstance(ch, bool) or not 0 < ch <= 1 << 16:
                raise ValueError(f"audio field {f['name']!r}: channels {ch!r:.40} is not a count")
    return f


class Layout:
    """Ordered fields of a record payload; methods chain.

    >>> Layout().image("cam", 4, 2, "rgb8").dtype["cam"].shape
    (2, 4, 3)
    """

    def __init__(self) -> None:
        self.fields: List[Dict[str, Any]] = []
        self._struct: Optional[np.dtype] = None   # set by from_dtype: explicit offsets kept
        self._frozen = False
        self._dtype: Optional[np.dtype] = None

    # ---- building ---------------------------------------------------------------------------
    def _add(self, field: Dict[str, Any]) -> "Layout":
        if self._frozen:
            raise UsageError("layout is frozen: the stream definition was already written")
        if self._struct is not None:
            raise UsageError("a layout made by Layout.from_dtype cannot take more fields")
        name = field["name"]
        if not isinstance(name, str) or not name:
            raise UsageError(f"field name must be a non-empty str, got {name!r}")
        if any(f["name"] == name for f in self.fields):
            raise UsageError(f"duplicate field name {name!r}")
        self.fields.append(field)
        self._dtype = None
        return self

    def image(self, name: str, width: int, height: int, pixel_format: str = "rgb8") -> "Layout":
        """An image ``height x width`` of ``pixel_format`` (see PIXEL_FORMATS).

        >>> Layout().image("d", 2, 2, "depth32f").dtype.itemsize
        16
        """
        if pixel_format not in PIXEL_FORMATS:
            raise UsageError(f"unknown pixel format {pixel_format!r}; known: {sorted(PIXEL_FORMATS)}")
        base, ch = PIXEL_FORMATS[pixel_format]
        shape = [int(height), int(width)] + ([ch] if ch > 1 else [])
        return self._add({"name": name, "kind": "image", "dtype": base, "shape": shape,
                          "width": int(width), "height": int(height), "pixel_format": pixel_format})

    def audio(self, name: str, rate: int, channels: int, sample_format: str = "int16",
              frames: Optional[int] = None) -> "Layout":
        """Audio samples; ``frames=None`` makes a variable-length block (any number of frames).

        >>> Layout().audio("mic", 48000, 2, "int16", frames=4).dtype.itemsize
        16
        """
        if sample_format not in SAMPLE_FORMATS:
            raise UsageError(f"unknown sample format {sample_format!r}; known: {sorted(SAMPLE_FORMATS)}")
        f: Dict[str, Any] = {"name": name, "kind": "audio", "dtype": SAMPLE_FORMATS[sample_format],
                             "rate": int(rate), "channels": int(channels), "sample_format": sample_format}
        if frames is None:
            f["variable"] = True
            f["shape"] = [-1, int(channels)]
        else:
            f["shape"] = [int(frames), int(channels)]
        return self._add(f)

    def vector3d(self, name: str, dtype: str = "float64") -> "Layout":
        """Three values of ``dtype``."""
        return self.array(name, dtype, (3,), kind="vector3d")

    def scalar(self, name: str, dtype: str = "float64") -> "Layout":
        """One value of a numpy ``dtype`` (e.g. "float32", "<u2")."""
        return self.array(name, dtype, (), kind="scalar")

    def array(self, name: str, dtype: str, shape: Sequence[int], kind: str = "array") -> "Layout":
        """A fixed array of ``dtype`` and ``shape``.

        >>> Layout().array("m", "int16", (2, 2)).dtype.itemsize
        8
        """
        try:
            dt = _le(np.dtype(dtype))
        except TypeError as exc:
            raise UsageError(f"field {name!r}: bad dtype {dtype!r} ({exc})") from None
        _no_objects(dt, f"field {name!r}", UsageError)
        return self._add({"name": name, "kind": kind, "dtype": dt.str if dt.names is None else _json_descr(dtype_to_descr(dt)),
                          "shape": [int(s) for s in shape]})

    def string(self, name: str, size: Optional[int] = None) -> "Layout":
        """A UTF-8 string: variable length, or ``size`` bytes zero-padded."""
        if size is None:
            return self._add({"name": name, "kind": "string", "variable": True})
        return self._add({"name": name, "kind": "string", "dtype": f"S{int(size)}", "shape": []})

    def blob(self, name: str, size: Optional[int] = None) -> "Layout":
        """Opaque bytes: variable length, or exactly ``size`` bytes."""
        if size is None:
            return self._add({"name": name, "kind": "bytes", "variable": True})
        return self._add({"name": name, "kind": "bytes", "dtype": f"V{int(size)}", "shape": []})

    # VRS-style names
    def add_image_spec(self, name: str, width: int, height: int, pixel_format: str = "rgb8") -> "Layout":
        """VRS spelling of :meth:`image`."""
        return self.image(name, width, height, pixel_format)

    def add_audio_spec(self, name: str, rate: int, channels: int, sample_format: str = "int16") -> "Layout":
        """VRS spelling of :meth:`audio` (variable-length blocks)."""
        return self.audio(name, rate, channels, sample_format)

    def add_vector3d(self, name: str, dtype: str = "float64") -> "Layout":
        """VRS spelling of :meth:`vector3d`."""
        return self.vector3d(name, dtype)

    def add_scalar(self, name: str, dtype: str = "float64") -> "Layout":
        """VRS spelling of :meth:`scalar`."""
        return self.scalar(name, dtype)

    @classmethod
    def from_dtype(cls, dtype: Any) -> "Layout":
        """A layout that is exactly a numpy (structured) dtype, offsets and padding kept.

        >>> dt = np.dtype({"names": ["a", "b"], "formats": ["<u2", "<f8"], "offsets": [0, 8], "itemsize": 16})
        >>> Layout.from_dtype(dt).dtype == dt
        True
        """
        dt = np.dtype(dtype)
        _no_objects(dt, "Layout.from_dtype", UsageError)
        if dt.names is None:
            dt = np.dtype([("value", dt)])
        lay = cls()
        lay._struct = dt
        lay.fields = [{"name": n, "kind": "field"} for n in dt.names]
        return lay

    # ---- derived ----------------------------------------------------------------------------
    @property
    def variable(self) -> List[Dict[str, Any]]:
        """The variable-length fields, in order."""
        return [f for f in self.fields if f.get("variable")]

    @property
    def dtype(self) -> np.dtype:
        """Structured dtype of the fixed part (may have no fields: itemsize 0)."""
        if self._struct is not None:
            return self._struct
        if self._dtype is None:
            parts = []
            for f in self.fields:
                if f.get("variable"):
                    continue
                d = f["dtype"]
                base = np.dtype(_descr_from_json(d)) if isinstance(d, list) else np.dtype(d)
                parts.append((f["name"], base, tuple(f["shape"])))
            self._dtype = np.dtype(parts) if parts else np.dtype([])
        return self._dtype

    @property
    def fixed(self) -> bool:
        """True when every payload has the same size (no variable fields)."""
        return not self.variable

    def freeze(self) -> None:
        """Forbid further changes (done when the stream definition is written)."""
        self._frozen = True

    def to_json(self) -> Dict[str, Any]:
        """JSON-able description (stored in the stream definition).

        >>> Layout().scalar("x", "<u4").to_json()["descr"]
        [['x', '<u4']]
        """
        return {"fields": [dict(f) for f in self.fields], "descr": _json_descr(dtype_to_descr(self.dtype)),
                "itemsize": self.dtype.itemsize}

    @classmethod
    def from_json(cls, obj: Any) -> "Layout":
        """Rebuild a layout from :meth:`to_json` output; DataError if it is malformed (wrong JSON
        types, a field without name or kind, an object dtype -- payload bytes are never pointers).

        >>> try:
        ...     Layout.from_json({"fields": [{"name": "v"}], "descr": [["v", "|O"]], "itemsize": 8})
        ... except DataError as e:
        ...     print(str(e)[:63])
        malformed layout in stream definition: descr: object dtype [('v
        """
        try:
            if not isinstance(obj, dict) or not isinstance(obj.get("fields"), list):
                raise TypeError(f"a layout is a map with a 'fields' list, not {type(obj).__name__}")
            lay = cls()
            lay.fields = [_field_from_json(f) for f in obj["fields"]]
            dt = descr_to_dtype(_descr_from_json(obj["descr"])) if obj.get("descr") else np.dtype([])
            _no_objects(dt, "descr", DataError)
            if int(obj.get("itemsize", dt.itemsize)) != dt.itemsize:
                dt = np.dtype({"names": list(dt.names or []),
                               "formats": [dt.fields[n][0] for n in dt.names or []],
                               "offsets": [dt.fields[n][1] for n in dt.names or []],
                               "itemsize": int(obj["itemsize"])})
            lay._struct = dt
            lay._frozen = True
            return lay
        except DataError as exc:
            raise DataError(f"malformed layout in stream definition: {exc}") from None
        except (KeyError, TypeError, ValueError, IndexError, OverflowError, RecursionError) as exc:
            raise DataError(f"malformed layout in stream definition: {exc!r}") from None

    # ---- packing ----------------------------------------------------------------------------
    def pack(self, *values: Any, **named: Any) -> bytes:
        """One payload from values in field order (or by name).

        >>> Layout().string("s").scalar("n", "u1").pack("hi", 7)
        b'\\x07\\x02\\x00\\x00\\x00hi'
        """
        dt = self.dtype
        if len(values) > len(self.fields):
            raise UsageError(f"{len(values)} values for a layout of {len(self.fields)} fields")
        vals = {f["name"]: v for f, v in zip(self.fields, values)}
        for k, v in named.items():
            if k not in {f["name"] for f in self.fields}:
                raise UsageError(f"no field {k!r} in layout")
            vals[k] = v
        rec = np.zeros((), dtype=dt)
        tail = []
        for f in self.fields:
            name = f["name"]
            if name not in vals:
                if f.get("variable"):
                    tail.append(_U32.pack(0))
                continue
            v = vals[name]
            if f.get("variable"):
                if f["kind"] == "string":
                    raw = v.encode("utf-8") if isinstance(v, str) else bytes(v)
                elif f["kind"] == "audio":
                    raw = np.ascontiguousarray(v, dtype=np.dtype(f["dtype"])).tobytes()
                else:
                    raw = bytes(v)
                tail.append(_U32.pack(len(raw)))
                tail.append(raw)
            else:
                try:
                    if dt[name].kind == "V" and isinstance(v, (bytes, bytearray, memoryview)):
                        rec[name] = np.frombuffer(bytes(v), dtype=dt[name])[0] if len(v) == dt[name].itemsize else v
                    elif isinstance(v, str):
                        rec[name] = v.encode("utf-8")
                    else:
                        rec[name] = v
                except (ValueError, TypeError) as exc:
                    raise UsageError(f"field {name!r}: cannot store {type(v).__name__} ({exc})") from None
        return rec.tobytes() + b"".join(tail)

    def unpack(self, payload: Any) -> Dict[str, Any]:
        """Fields of one payload: numpy values for fixed fields, str/bytes/arrays for variable ones."""
        mv = memoryview(payload).cast("B")
        dt = self.dtype
        if len(mv) < dt.itemsize:
            raise DataError(f"payload of {len(mv)} bytes is shorter than the layout's {dt.itemsize}",
                            length=len(mv))
        out: Dict[str, Any] = {}
        if dt.names:
            rec = np.frombuffer(mv[:dt.itemsize], dtype=dt)[0]
            for n in dt.names:
                out[n] = rec[n]
        pos = dt.itemsize
        for f in self.variable:
            if pos + 4 > len(mv):
                raise DataError(f"variable field {f['name']!r} cut short", offset=pos)
            (ln,) = _U32.unpack_from(mv, pos)
            pos += 4
            if pos + ln > len(mv):
                raise DataError(f"variable field {f['name']!r} runs past the payload", offset=pos)
            raw = mv[pos:pos + ln]
            pos += ln
            if f["kind"] == "string":
                out[f["name"]] = bytes(raw).decode("utf-8", "replace")
            elif f["kind"] == "audio":
                out[f["name"]] = np.frombuffer(raw, dtype=np.dtype(f["dtype"])).reshape(-1, f["channels"])
            else:
                out[f["name"]] = bytes(raw)
        return out
