"""The 44 golden FastPack cases written by the real Perl Data::FastPack v0.3.0.

Our decoder must return exactly what the Perl decoder returned (time bits, id or name, payload,
leftover, namespace table) and our encoder must write identical bytes; the two reference quirks
are handled as spec/fastpack.md says, and tested both ways.
"""
import hashlib
import struct

import pytest

from conftest import fastpack_cases, load_case
from fastodin.codec import Decoder, Encoder, decode
from fastodin.errors import MetadataError, TruncatedError, UsageError
from fastodin.metadata import decode_meta

CASES = fastpack_cases()
QUIRKS = {"ns_batch_bug", "ns_reset_quirk_payload_0"}


def test_all_44_cases_present():
    assert len(CASES) == 44
    for name in CASES:
        manifest, data = load_case(name)
        assert hashlib.sha256(data).hexdigest() == manifest["file_sha256"], name


def tbits(t):
    return struct.pack("<d", t).hex()


def expected_outputs(manifest, key="decode"):
    d = manifest[key]
    if "outputs_compact" in d:
        return [
            {"time_hex": th, "payload_hex": ph, **({"id": k} if isinstance(k, int) else {"name": k})}
            for _t, th, k, ph, _len in d["outputs_compact"]
        ]
    return d["outputs"]


def as_dicts(records, namespace):
    out = []
    for r in records:
        d = {"time_hex": tbits(r.time), "payload_hex": bytes(r.payload).hex()}
        if namespace and r.name is not None:
            d["name_hex"] = r.name.encode("utf-8", "surrogateescape").hex()
        else:
            assert r.name is None
            d["id"] = r.id
        out.append(d)
    return out


def norm(expected):
    keep = ("time_hex", "payload_hex", "id", "name_hex")
    out = []
    for e in expected:
        d = {k: e[k] for k in keep if k in e}
        if "name_hex" not in d and "name" in e:
            d["name_hex"] = e["name"].encode().hex()
        out.append(d)
    return out


def run_decoder(data, namespace, chunk=None):
    dec = Decoder(namespace=namespace)
    recs = []
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        dec.feed(data[i : i + step])
        recs.extend(dec)
    return dec, recs


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("chunk", [None, 1, 7, 32768])
def test_decode_matches_perl(name, chunk):
    manifest, data = load_case(name)
    ns = manifest["mode"] == "namespace"
    if chunk == 1 and len(data) > 5000:
        chunk = 4093  # byte-at-a-time on the 240 KB case is covered by the hypothesis tests
    for key, use_ns in [("decode", ns)] + ([("decode_without_namespace", False)] if "decode_without_namespace" in manifest else []):
        dec, recs = run_decoder(data, use_ns, chunk)
        assert as_dicts(recs, use_ns) == norm(expected_outputs(manifest, key)), (name, key)
        assert dec.buffered == manifest[key]["leftover_bytes"]
        assert dec.tell() == manifest[key]["consumed_bytes"]
        if use_ns:
            # Perl names are byte strings; the manifest spells each byte as one character
            after = {int(k): v.encode("latin-1") for k, v in manifest[key]["namespace_after"]["id_to_name"].items()}
            assert {k: v.encode("utf-8", "surrogateescape") for k, v in dec.namespace.names.items()} == after


@pytest.mark.parametrize("name", CASES)
def test_metadata_matches_perl(name):
    manifest, data = load_case(name)
    outs = manifest["decode"].get("outputs", [])
    for out in outs:
        if out.get("id") != 0 or not out["payload_hex"]:
            continue
        payload = bytes.fromhex(out["payload_hex"])
        if "meta_decode_error" in out:
            with pytest.raises(MetadataError) as ei:
                decode_meta(payload)
            assert isinstance(ei.value, ValueError)
        else:
            got = decode_meta(payload)
            want = out["meta_decoded"]
            if name == "meta_msgpack":
                # Perl wrote the Latin-1 byte e9 inside a msgpack str: kept losslessly (spec/fastpack.md)
                assert got.pop("comment") == "caf\udce9"
                want = dict(want)
                want.pop("comment")
            assert got == want


def encoder_inputs(manifest):
    """Yield (time, key, payload) per input actually consumed by each Perl encode call."""
    enc = manifest["encode"]
    if "calls_compact" in enc:
        for _ret, inputs in enc["calls_compact"]:
            for _t, th, key, ph in inputs:
                yield struct.unpack("<d", bytes.fromhex(th))[0], key, bytes.fromhex(ph)
        return
    for call in enc["calls"]:
        inputs = call["inputs"]
        if call["limit"] is not None:
            inputs = inputs[: call["limit"]]
        for inp in inputs:
            t = struct.unpack("<d", bytes.fromhex(inp["time_hex"]))[0]
            key = inp["id"] if "id" in inp else bytes.fromhex(inp["name_hex"])
            payload = b"" if inp.get("payload_hex") is None else bytes.fromhex(inp["payload_hex"])
            yield t, key, payload


@pytest.mark.parametrize("name", [c for c in CASES if c not in QUIRKS])
def test_encode_matches_perl(name):
    manifest, data = load_case(name)
    enc = Encoder(namespace=manifest["mode"] == "namespace")
    for t, key, payload in encoder_inputs(manifest):
        enc.add(t, key, payload)
    out = enc.take()
    assert len(out) == manifest["encode"]["encoded_length_before_truncation"]
    assert out[: len(data)] == data  # truncated_* files are cut copies of the full encoding
    if not name.startswith("truncated"):
        assert out == data


def test_quirk_batch_bug_decoded_as_perl_and_encoded_correctly():
    manifest, data = load_case("ns_batch_bug")
    # Perl's buggy bytes decode exactly as Perl decodes them (checked in test_decode_matches_perl);
    # here: our encoder writes the correct ids for the same batch.
    ours = Encoder(namespace=True)
    ours.add_many(encoder_inputs(manifest))
    raw = ours.take()
    assert raw != data
    plain = [(r.id, bytes(r.payload)) for r in decode(raw)]
    assert plain == [(1, b"A"), (1, b"a1"), (2, b"B"), (2, b"b1"), (1, b"a2"), (3, b"C"), (3, b"c1")]
    named = [(r.name, bytes(r.payload)) for r in decode(raw, namespace=True)]
    assert named == [("A", b"a1"), ("B", b"b1"), ("A", b"a2"), ("C", b"c1")]


def test_quirk_reset_payload_0_both_ways():
    manifest, data = load_case("ns_reset_quirk_payload_0")
    # decoding: the 1-byte payload "0" on id 0 resets the namespace, as the Perl decoder does
    names = [(r.name, bytes(r.payload)) for r in decode(data, namespace=True)]
    assert names == [("A", b"a"), ("B", b"b")]
    # without a namespace it is an ordinary id-0 record
    assert any(r.id == 0 and bytes(r.payload) == b"0" for r in decode(data))
    # encoding: we refuse to write it in namespace mode, since a Perl decoder would reset
    enc = Encoder(namespace=True)
    with pytest.raises(UsageError, match="reset"):
        enc.add(2.0, 0, b"0")
    with pytest.raises(UsageError):
        enc.add(2.0, "0", b"0")
    # the explicit reset is the empty payload
    enc.add(1.0, "A", b"a")
    enc.reset(2.0)
    enc.add(3.0, "B", b"b")
    assert [(r.name, bytes(r.payload)) for r in decode(enc.take(), namespace=True)] == names


@pytest.mark.parametrize("name", [c for c in CASES if c.startswith("truncated")])
def test_truncated_one_shot_raises_with_offset(name):
    manifest, data = load_case(name)
    good = manifest["decode"]["outputs"]
    with pytest.raises(TruncatedError) as ei:
        decode(data)
    e = ei.value
    assert e.offset == manifest["decode"]["consumed_bytes"]
    assert e.record == len(good)
    assert e.length == manifest["decode"]["leftover_bytes"]
    assert len(e.unpacked) == len(good)
    assert f"offset {e.offset}" in str(e)
