"""fastodin: FastPack (byte-exact with Perl Data::FastPack), ODIN streams and seekable zstd archives.

>>> import fastodin
>>> recs = fastodin.decode(fastodin.encode([(0.0, "a", b"1")], namespace=True), namespace=True)
>>> recs[0].name
'a'
"""
from .codec import Decoder, Encoder, Record, decode, encode
from .errors import (
    ChecksumError,
    CorruptFrameError,
    DataError,
    ExtraData,
    FastOdinError,
    LimitError,
    MetadataError,
    OdinError,
    TimestampOrderError,
    TruncatedError,
    UsageError,
)
from .metadata import decode_meta, encode_meta
from .namespace import Namespace

__version__ = "0.1.0"

__all__ = [
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
    "ChecksumError",
    "CorruptFrameError",
    "OdinError",
    "TimestampOrderError",
    "UsageError",
]
