"""The web viewer (``fastodin view``): a local page that stays fast on recordings of any size
because it reads only what is in view.

One module per concern:

* :mod:`~fastodin.view.fields`    which typed fields a channel has (layouts, ODIN sets) and their values
* :mod:`~fastodin.view.summary`   the multi-resolution min/max/NaN summary and its cache file
* :mod:`~fastodin.view.envelope`  exact envelopes of a window from the summary and a few records
* :mod:`~fastodin.view.follow`    how growth of a file being recorded is seen (replaceable)
* :mod:`~fastodin.view.dataset`   the served files: channels, summaries, record reads, events, growth
* :mod:`~fastodin.view.server`    the HTTP server: the data API (spec/view-api.md), the page, its assets

The server uses only the standard library (``http.server``) and the page ships uPlot (MIT) as a
static file: no optional extra is needed.

>>> import os, tempfile, numpy as np, fastodin
>>> path = os.path.join(tempfile.mkdtemp(), "x.fastpack.zst")
>>> with fastodin.Writer(path) as w:
...     w.write_many(np.arange(4) * 1.0, "p", np.array([2.0, -1.0, 7.0, 3.0]))
>>> vs = ViewSet([path], cache_dir=False); vs.build()
>>> e = vs.series("p", "value", None, None, points=2)
>>> e["min"].tolist(), e["max"].tolist(), e["n"].tolist()
([-1.0, 3.0], [2.0, 7.0], [2, 2])
>>> vs.close()
"""
from .dataset import ViewFile, ViewRequestError, ViewSet
from .follow import Follower, StatFollower
from .server import ViewServer

__all__ = ["ViewSet", "ViewFile", "ViewServer", "ViewRequestError", "Follower", "StatFollower"]
