"""JPack trees: the Perl tools' browser format (``fastpack-split``, Data::JPack), written and read.

``fastpack-split`` cuts a FastPack stream into ``ROOT/data/jpack/<set>/<seq>.jpack`` files, each a
``chunkLoader.decodeData({...}, function(){ return "<base64>" })`` call that the author's browser
chunk loader runs from ``file://``.  :func:`write_tree` writes that tree byte for byte (plus raw
deflate chunks, which fastpack-split advertises but does not write); :func:`open_tree` (what
:func:`fastodin.open` does for a directory or ``.jpack`` file) reads it back.  Layout: spec/jpack.md.

>>> import os, tempfile, fastodin
>>> d = tempfile.mkdtemp()
>>> with fastodin.Writer(os.path.join(d, "a.fastpack.zst")) as w:
...     w.write(0.5, "imu", bytes(16))
>>> rep = fastodin.jpack.write_tree(os.path.join(d, "a.fastpack.zst"), os.path.join(d, "web"))
>>> os.path.relpath(rep.files[0], d)
'web/data/jpack/00000000000000000000000000000000/00000000000000000000000000000000.jpack'
>>> fastodin.open(os.path.join(d, "web")).read("imu", dtype="<f8")[1].shape
(1, 2)
"""
from ._format import COMPRESSIONS, DEFAULT_BYTE_LIMIT, DEFAULT_MESSAGE_LIMIT, PREFIX
from ._read import DEFAULT_MAX_CHUNK_SIZE, Tree, decode_file, is_jpack, open_tree, read_file, tree_files
from ._write import Cutter, WriteReport, write_tree

__all__ = ["write_tree", "WriteReport", "Cutter", "open_tree", "read_file", "decode_file", "is_jpack",
           "tree_files", "Tree", "PREFIX", "COMPRESSIONS", "DEFAULT_MESSAGE_LIMIT", "DEFAULT_BYTE_LIMIT",
           "DEFAULT_MAX_CHUNK_SIZE"]
