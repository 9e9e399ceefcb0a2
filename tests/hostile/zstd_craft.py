"""Hand-made zstd frames and archive pieces for the hostile-input tests: a few KB that claim or
inflate to GBs, index entries that lie (no big binary fixtures: everything is built here)."""
import struct

from fastodin.archive.index import FrameEntry, consolidated_payload, entry_payload
from fastodin.archive.seekable import INDEX_MAGIC, build_seek_table, skippable_frame

ZSTD_MAGIC = 0xFD2FB528
BLOCK = 1 << 17


def rle_frame(n_blocks: int, byte: int = 0, content_size=None) -> bytes:
    """A zstd frame of ``n_blocks`` RLE blocks (4 bytes each, 128 KiB of ``byte`` each), with or
    without a declared content size."""
    window = bytes([(17 - 10) << 3])            # 128 KiB window: one block
    if content_size is None:
        head = struct.pack("<IB", ZSTD_MAGIC, 0x00) + window
    else:
        head = struct.pack("<IB", ZSTD_MAGIC, 0xC0) + window + struct.pack("<Q", content_size)

    def block(last: int) -> bytes:
        return ((BLOCK << 3) | (1 << 1) | last).to_bytes(3, "little") + bytes([byte])

    return head + block(0) * (n_blocks - 1) + block(1)


def index_frame(e: FrameEntry) -> bytes:
    return skippable_frame(entry_payload(e), INDEX_MAGIC)


def archive_of(frames, complete: bool) -> bytes:
    """An archive of ``[(entry, data frame bytes)]``: each index frame before its data frame, offsets
    and stream offsets filled in; ``complete`` adds the consolidated index and the seek table."""
    out = bytearray()
    seek = []
    soff = 0
    for k, (e, frame) in enumerate(frames):
        e.frame_no = k
        e.stream_offset = soff
        e.compressed_size = e.compressed_size or len(frame)
        head_len = 8 + len(entry_payload(e))
        e.data_offset = len(out) + head_len
        idx = index_frame(e)
        out += idx + frame
        seek += [(len(idx), 0), (len(frame), e.decompressed_size)]
        soff += e.decompressed_size
    if complete:
        cons = skippable_frame(consolidated_payload([e for e, _ in frames]), INDEX_MAGIC)
        out += cons
        seek.append((len(cons), 0))
        out += build_seek_table(seek)
    return bytes(out)


def frames_of(data: bytes):
    """``[(offset, magic, total size)]`` of every frame of a well-formed file."""
    from fastodin.archive.seekable import zstd_frame_size

    out = []
    pos = 0
    while pos < len(data):
        magic, ln = struct.unpack_from("<II", data, pos)
        if magic == ZSTD_MAGIC:
            n = zstd_frame_size(lambda o, k: data[o:o + k], pos, len(data))
        else:
            n = 8 + ln
        out.append((pos, magic, n))
        pos += n
    return out
