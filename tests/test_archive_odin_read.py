"""Issue 8 item 21: ``Archive.read``/``to_pandas``/``read_set`` on an ODIN set give typed columns --
the values ``fastodin.odin.decode`` gives -- with the set named by its channel, a hex string or an
int; and item 25: an empty selection of a typed channel is empty columns of the right dtypes."""
import glob

import numpy as np
import pytest

import fastodin
from fastodin import Layout, Writer
from fastodin.errors import UsageError
from fastodin.odin import Simulator, decode
from fastodin.odin.mapping import OdinToFastPack, WriterSink

VEC = "tests/vectors/odin"


def _record(path, packets, **kw):
    with Writer(path) as w:
        conv = OdinToFastPack(WriterSink(w), **kw)
        conv.add_many(packets)
        conv.close()
    return path


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return _record(tmp_path_factory.mktemp("odin") / "sim.fastpack.zst", Simulator(seed=3).packets(duration=1.0))


def _same(a, b):
    """Equal dtypes and shapes, every leaf field bit for bit (struct padding bytes ignored)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype.names:
        for k in a.dtype.names:
            _same(a[k], b[k])
    else:
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def test_read_gives_the_decoded_set(sim):
    full = decode(sim)
    assert len(full) == 3
    with fastodin.open(sim) as ar:
        for sid, tab in full.items():
            want = tab.to_numpy()
            for spec in (f"odin/set/0x{sid:04X}", f"0x{sid:04X}", f"0x{sid:04x}", sid):
                t, v = ar.read(spec)
                _same(v, want)                               # was: an (n, packet size) uint8 array
                rec = [r.time for r in ar.records(channels=f"odin/set/0x{sid:04X}")]
                assert t.tolist() == rec
            got = ar.read_set(sid)
            assert len(got) == len(tab) and got.definition == tab.definition
            for k, col in tab.columns().items():
                _same(np.ascontiguousarray(got.columns()[k]), np.ascontiguousarray(col))
            raw = ar.read(sid, dtype="u1")[1]                # the packets themselves on request
            assert raw.shape == (len(tab), tab.definition.packet_size)


def test_to_pandas_of_a_set(sim):
    full = decode(sim)
    with fastodin.open(sim) as ar:
        for sid, tab in full.items():
            df = ar.to_pandas(f"0x{sid:04X}")
            want = tab.to_pandas()
            assert list(df.columns) == [c for c in want.columns if c != "time"]
            assert df.index.name == "time" and len(df) == len(tab)
            for c in df.columns:
                assert df[c].tolist() == want[c].tolist()


def test_a_time_window_decodes_the_same_rows(sim):
    full = decode(sim)
    with fastodin.open(sim) as ar:
        for sid in full:
            t_all, v_all = ar.read(sid)
            sel = (t_all >= 0.25) & (t_all < 0.5)
            t, v = ar.read(sid, 0.25, 0.5)
            assert t.tolist() == t_all[sel].tolist() and len(v) == int(sel.sum()) > 0
            for k in v.dtype.names:
                if k not in ("ticks", "time"):                  # unwrapped from the window's start
                    _same(v[k], v_all[k][sel])


def test_stored_definitions_type_a_set_announced_by_0x01_only(tmp_path):
    pk = [open(f, "rb").read() for f in sorted(glob.glob(f"{VEC}/0[1-2]_*.bin"))]
    p = _record(tmp_path / "db.fastpack.zst", pk, odin_db=f"{VEC}/golden_od.odin.json")
    want = decode(pk, odin_db=f"{VEC}/golden_od.odin.json")[0x0996]
    with fastodin.open(p) as ar:                             # no odin_db: the recording's stored definitions
        t, v = ar.read("0x0996")
        assert v["system.axis"][:, 1].tolist() == [100, 200, 300, 400]
        _same(v, want.to_numpy())


def test_empty_window_of_a_set_keeps_its_dtype(sim):
    with fastodin.open(sim) as ar:
        full = ar.read(0x98A8)[1]
        t, v = ar.read(0x98A8, 50.0, 60.0)
        assert t.shape == (0,) and v.shape == (0,) and v.dtype == full.dtype
        df = ar.to_pandas(0x98A8, 50.0, 60.0)
        assert len(df) == 0 and list(df.columns) == list(ar.to_pandas(0x98A8, 0.0, 0.1).columns)


def test_not_a_set(sim, tmp_path):
    with fastodin.open(sim) as ar:
        with pytest.raises(UsageError, match="not an ODIN set"):
            ar.read_set("0x0001")
        with pytest.raises(UsageError):
            ar.read("0x0001")
    p = tmp_path / "plain.fastpack.zst"
    with Writer(p) as w:
        w.write(0.0, "a", b"12")
    with fastodin.open(p) as ar:
        assert ar.read(1)[1].tolist() == [[49, 50]]          # an int that is a file id stays one


# ---- item 25: empty selections of typed channels -------------------------------------------------

def test_empty_selection_is_empty_typed_columns(tmp_path):
    p = tmp_path / "typed.fastpack.zst"
    with Writer(p) as w:
        w.write_many(np.arange(10) * 1.0, "f", np.arange(10.0))
        w.write_many(np.arange(10) * 1.0, "v", np.arange(30, dtype="<i4").reshape(10, 3))
        w.define_channel("s", Layout().scalar("a", "<u2").array("b", "<f4", (2,)))
        w.write(1.0, "s", Layout().scalar("a", "<u2").array("b", "<f4", (2,)).pack(7, (1.0, 2.0)))
        st = w.create_stream("imu", data=Layout().vector3d("acc").scalar("temp", "float32"))
        st.config(0.0)
        st.data(0.5, (1, 2, 3), 2.5)
        w.write(1.0, "raw", b"12345678")
    with fastodin.open(p) as ar:
        for ch in ("f", "v", "s", "imu", "raw"):
            t, v = ar.read(ch, 100.0, 200.0)                 # was: DataError "payloads of 0 bytes"
            t2, v2 = ar.read(ch)
            assert t.shape == (0,) and t.dtype == np.float64
            assert v.dtype == v2.dtype and v.shape == (0,) + v2.shape[1:], ch
            df = ar.to_pandas(ch, 100.0, 200.0)
            assert len(df) == 0 and list(df.columns) == list(ar.to_pandas(ch).columns), ch
            assert df.dtypes.tolist() == ar.to_pandas(ch).dtypes.tolist(), ch
        assert ar.read("raw", 100.0, 200.0, dtype="<u4")[1].shape == (0, 2)
        assert ar.read("f", 5.0, 5.0)[1].shape == (0,)
