"""fastodin: FastPack (byte-exact with Perl Data::FastPack), ODIN streams and seekable zstd archives.

>>> import fastodin
>>> recs = fastodin.decode(fastodin.encode([(0.0, "a", b"1")], namespace=True), namespace=True)
>>> recs[0].name
'a'
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "x.fastpack.zst")
>>> with fastodin.Writer(path) as w:
...     w.write(0.5, "imu", bytes(16))
>>> fastodin.open(path).read("imu", dtype="<f8")[1].shape
(1, 2)
"""
from . import jpack, odin
from .archive import Archive, Layout, Stream, Writer, recover
from .archive import open_archive as open
from .codec import Decoder, Encoder, Record, decode, encode
from .columns import channel_array, decode_columns, encode_columns
from .datasets import dataset
from .errors import (
    ChecksumError,
    CorruptFrameError,
    DataError,
    ExtraData,
    FastOdinError,
    JPackError,
    LimitError,
    MetadataError,
    NotSeekableError,
    OdinError,
    TimestampOrderError,
    TruncatedError,
    UsageError,
)
from .metadata import decode_meta, encode_meta
from .namespace import Namespace

__version__ = "0.1.0"

__all__ = [
    "Writer",
    "Stream",
    "Layout",
    "Archive",
    "open",
    "recover",
    "dataset",
    "odin",
    "jpack",
    "decode_columns",
    "channel_array",
    "encode_columns",
    "Decoder",
    "Encoder",
    "Record",
    "decode",
    "encode",
    "Namespace",
    "encode_meta",
    "decode_meta",
    "FastOdinError",
    "DataError",
    "TruncatedError",
    "ExtraData",
    "LimitError",
    "MetadataError",
    "NotSeekableError",
    "ChecksumError",
    "CorruptFrameError",
    "OdinError",
    "JPackError",
    "TimestampOrderError",
    "UsageError",
]
