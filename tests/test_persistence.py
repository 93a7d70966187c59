"""The safe file format: exact round trips, and files that must be refused without running."""

import hashlib
import io
import json
import os
import pathlib
import pickle
import subprocess
import sys
import zipfile

import joblib
import keras
import numpy as np
import pandas as pd
import pytest
from conftest import FAST, REPO_ROOT
from sklearn.exceptions import NotFittedError

from skembedrec import EmbeddingRatingRegressor, _persistence
from skembedrec._codec import Encoder
from skembedrec._persistence import _decode_ids, _encode_ids, _rebuild_encoder
from skembedrec.datasets import make_ratings


class _Payload:
    """Unpickling this creates ``marker``: the stand-in for arbitrary code in a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model.skembedrec"
    fitted.save(path)
    return path


@pytest.fixture(scope="module")
def loaded(saved):
    return EmbeddingRatingRegressor.load(saved)


def _with_keras_config(src, dst, edit):
    """A copy of the model file ``src`` at ``dst`` whose Keras config.json ``edit`` changed."""
    with zipfile.ZipFile(src) as zf:
        model_bytes = zf.read("model.keras")
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(model_bytes)) as zin, zipfile.ZipFile(buffer, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            zout.writestr(name, data)
    return _rewrite(src, dst, replace={"model.keras": buffer.getvalue()})


def _rewrite(src, dst, replace=None, add=None):
    """Copy the zip ``src`` to ``dst``, replacing and adding members (name -> bytes).

    The digests in ``skembedrec.json`` are recomputed, as an attacker would: the tests then
    reach the checks behind them.
    """
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin:
        members = {name: replace.get(name, zin.read(name)) for name in zin.namelist()}
    try:
        meta = json.loads(members["skembedrec.json"])
        meta["sha256"] = {name: hashlib.sha256(members[name]).hexdigest()
                          for name in ("arrays.npz", "model.keras")}
        members["skembedrec.json"] = json.dumps(meta)
    except (KeyError, ValueError, TypeError):
        pass
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in {**members, **add}.items():
            zout.writestr(name, data)
    return dst


def _meta(path):
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("skembedrec.json"))


# -- round trips -------------------------------------------------------------------------


def test_round_trip_predicts_identically(fitted, loaded, ratings):
    X, _ = ratings
    unseen = X.head(5).assign(user_id=[10**6, 1, 2, 10**6 + 1, 3])
    assert np.array_equal(loaded.predict(X), fitted.predict(X))
    assert np.array_equal(loaded.predict(unseen), fitted.predict(unseen))
    assert np.array_equal(loaded.is_known(unseen), fitted.is_known(unseen))


def test_round_trip_restores_every_fitted_attribute(fitted, loaded):
    assert loaded.get_params() == fitted.get_params()
    assert set(vars(loaded)) == set(vars(fitted))
    for kind in ("user_ids", "item_ids"):
        a, b = getattr(loaded.encoder_, kind), getattr(fitted.encoder_, kind)
        assert a.dtype == b.dtype and np.array_equal(a, b)
    for name in ("n_users_", "n_items_", "rating_min_", "rating_max_", "history_",
                 "n_features_in_"):
        assert getattr(loaded, name) == getattr(fitted, name), name
    assert list(loaded.feature_names_in_) == list(fitted.feature_names_in_)
    scaler, original = loaded.regressor_.transformer_, fitted.regressor_.transformer_
    for name in ("mean_", "var_", "scale_", "n_samples_seen_"):
        assert np.array_equal(getattr(scaler, name), getattr(original, name)), name
    if hasattr(fitted, "seen_"):
        assert (loaded.seen_ != fitted.seen_).nnz == 0
        assert type(loaded.seen_) is type(fitted.seen_)
    for a, b in zip(loaded.model_.weights, fitted.model_.weights, strict=True):
        assert np.array_equal(a.numpy(), b.numpy()), a.path


def test_loaded_inner_regressor_is_a_fitted_scikeras_regressor(fitted, loaded):
    inner, original = loaded.regressor_.regressor_, fitted.regressor_.regressor_
    assert inner.initialized_
    for name, value in vars(original).items():
        if name not in ("model_", "model"):
            assert repr(getattr(inner, name)) == repr(value), name
    codes = np.array([[0, 0], [1, 2], [fitted.n_users_, fitted.n_items_]], dtype=np.int32)
    np.testing.assert_allclose(loaded.regressor_.predict(codes),
                               fitted.regressor_.predict(codes), rtol=1e-6)


@pytest.mark.slow
def test_round_trip_in_a_fresh_process(fitted, saved, ratings, tmp_path):
    X, _ = ratings
    X.to_csv(tmp_path / "X.csv", index=False)
    out = tmp_path / "pred.npy"
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from skembedrec import EmbeddingRatingRegressor\n"
        "est = EmbeddingRatingRegressor.load(sys.argv[1])\n"
        "np.save(sys.argv[3], est.predict(pd.read_csv(sys.argv[2])))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", code, str(saved), str(tmp_path / "X.csv"), str(out)],
                   check=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert np.array_equal(np.load(out), fitted.predict(X))


@pytest.mark.parametrize(
    "ids",
    [
        np.array([-(2**63), 0, 2**63 - 2, 2**63 - 1], dtype=np.int64),
        np.array([1, 2**64 - 1], dtype=np.uint64),
        np.array([-1.5, 0.25, 3.0]),
        np.array([False, True]),
        np.array(["Zoë", "a", "ß", "用户", "🎬"], dtype=object),
        np.array([1, 2.5, 3], dtype=object),
        np.array([b"a", b"\xff\x00"], dtype=object),
    ],
    ids=["int64-limits", "uint64", "float", "bool", "unicode", "mixed-number", "bytes"],
)
def test_id_vocabularies_keep_their_exact_types(ids):
    encoder = Encoder()
    spec = _encode_ids(ids, "user", encoder)
    json.dumps(spec)  # the JSON part must really be JSON
    decoded = _decode_ids(json.loads(json.dumps(spec)), encoder.arrays)
    assert decoded.dtype == ids.dtype
    assert [type(v) for v in decoded] == [type(v) for v in ids]
    assert np.array_equal(decoded, ids)
    encoder = _rebuild_encoder(decoded, decoded[::-1])
    assert encoder.user_ids.dtype == ids.dtype and np.array_equal(encoder.user_ids, ids)
    codes, _ = encoder.codes(ids, ids)
    assert codes.tolist() == list(range(len(ids)))


def test_string_ids_round_trip_through_a_file(ratings, tmp_path):
    X, y = ratings
    X = X.assign(user_id="ü-" + X["user_id"].astype(str), item_id=X["item_id"].astype(float))
    est = EmbeddingRatingRegressor(**FAST).fit(X, y)
    est.save(tmp_path / "m.skembedrec")
    loaded = EmbeddingRatingRegressor.load(tmp_path / "m.skembedrec")
    assert np.array_equal(loaded.predict(X), est.predict(X))
    assert loaded.encoder_.user_ids.dtype == object
    assert loaded.encoder_.item_ids.dtype == np.int64  # whole-number floats are int ids


def test_random_state_instance_round_trips(loaded, tmp_path):
    rng = np.random.RandomState(7)
    rng.rand(3)
    est = loaded.set_params(random_state=rng)
    est.save(tmp_path / "rs.skembedrec")
    back = EmbeddingRatingRegressor.load(tmp_path / "rs.skembedrec")
    assert back.random_state.rand() == rng.rand()


def test_joblib_still_works_and_docs_warn_about_trust(fitted, ratings, tmp_path):
    X, _ = ratings
    joblib.dump(fitted, tmp_path / "m.joblib")
    assert np.array_equal(joblib.load(tmp_path / "m.joblib").predict(X), fitted.predict(X))
    for doc in (EmbeddingRatingRegressor.save.__doc__, _persistence.__doc__):
        assert "pickle" in doc
    assert "trusted sources" in EmbeddingRatingRegressor.save.__doc__


def test_interrupted_save_keeps_the_previous_file(fitted, saved, tmp_path, monkeypatch):
    target = tmp_path / "m.skembedrec"
    target.write_bytes(saved.read_bytes())

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupt)
    with pytest.raises(KeyboardInterrupt):
        fitted.save(target)
    assert target.read_bytes() == saved.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["m.skembedrec"]


# -- files that must be refused ------------------------------------------------------------


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        EmbeddingRatingRegressor(**FAST).save(tmp_path / "m.skembedrec")


def test_ids_without_a_safe_representation_are_refused_at_save(saved, tmp_path):
    est = EmbeddingRatingRegressor.load(saved)
    odd = np.empty(est.n_users_, dtype=object)
    odd[:] = [("tuple", i) for i in range(est.n_users_)]
    est.encoder_.vocabulary_[0] = odd
    est.encoder_._indexes = None
    with pytest.raises(ValueError, match=r"user id \('tuple', 0\) of type tuple"):
        est.save(tmp_path / "bad.skembedrec")
    assert not (tmp_path / "bad.skembedrec").exists()


def test_unknown_fitted_attribute_is_refused_at_save_not_dropped(saved, tmp_path):
    est = EmbeddingRatingRegressor.load(saved)
    est.lookup_table_ = {"a": object()}
    with pytest.raises(ValueError, match="fitted attribute 'lookup_table_' of type dict"):
        est.save(tmp_path / "bad.skembedrec")


def test_extra_numeric_attributes_round_trip(saved, tmp_path):
    import scipy.sparse as sp

    est = EmbeddingRatingRegressor.load(saved)
    est.popularity_ = np.arange(5, dtype=np.int16)
    est.pairs_ = sp.coo_matrix(np.eye(3))
    est.note_ = "fitted on ml-100k"
    est.save(tmp_path / "extra.skembedrec")
    back = EmbeddingRatingRegressor.load(tmp_path / "extra.skembedrec")
    assert back.popularity_.dtype == np.int16 and np.array_equal(back.popularity_, np.arange(5))
    assert isinstance(back.pairs_, sp.coo_matrix) and (back.pairs_ != est.pairs_).nnz == 0
    assert back.note_ == "fitted on ml-100k"


def test_object_array_with_a_pickle_payload_is_refused_unexecuted(saved, tmp_path):
    armed = tmp_path / "armed"
    pickle.loads(pickle.dumps(_Payload(armed)))
    assert armed.exists(), "the payload must be live for this test to mean anything"

    marker = tmp_path / "pwned"
    with zipfile.ZipFile(saved) as zf, np.load(io.BytesIO(zf.read("arrays.npz"))) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["user_ids"] = np.array([_Payload(marker)], dtype=object)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    meta = _meta(saved)
    meta["arrays"] = sorted(arrays)
    bad = _rewrite(saved, tmp_path / "bad.skembedrec", replace={
        "arrays.npz": buffer.getvalue(), "skembedrec.json": json.dumps(meta)})
    with pytest.raises(ValueError, match=r"Refusing to load .*bad\.skembedrec.*pickled"):
        EmbeddingRatingRegressor.load(bad)
    assert not marker.exists()


def test_extra_pickle_member_is_refused_unexecuted(saved, tmp_path):
    marker = tmp_path / "pwned"
    bad = _rewrite(saved, tmp_path / "bad.skembedrec",
                   add={"estimator.pkl": pickle.dumps(_Payload(marker))})
    with pytest.raises(ValueError, match=r"unexpected member\(s\) \['estimator.pkl'\]"):
        EmbeddingRatingRegressor.load(bad)
    assert not marker.exists()


def test_a_pickle_or_joblib_file_is_refused_unexecuted(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "model.skembedrec"
    joblib.dump(_Payload(marker), bad)
    with pytest.raises(ValueError, match=r"model\.skembedrec.*not a skembedrec model file"):
        EmbeddingRatingRegressor.load(bad)
    assert not marker.exists()


def test_keras_lambda_payload_is_refused_unexecuted(saved, tmp_path):
    marker = tmp_path / "pwned"
    # The lambda touches the marker whenever it runs.
    touch = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]")
    inputs = keras.Input(shape=(2,), dtype="int32", name="ids")
    outputs = keras.layers.Lambda(touch, output_shape=(2,))(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "evil.keras")
    unsafe = keras.saving.load_model(tmp_path / "evil.keras", safe_mode=False)
    unsafe(np.zeros((1, 2), dtype="int32"))
    assert marker.exists(), "the payload must survive saving for this test to mean anything"
    marker.unlink()
    bad = _rewrite(saved, tmp_path / "bad.skembedrec",
                   replace={"model.keras": (tmp_path / "evil.keras").read_bytes()})
    with pytest.raises(ValueError, match=r"Refusing to load .*'Lambda'.*arbitrary Python code"):
        EmbeddingRatingRegressor.load(bad)
    assert not marker.exists()


def test_keras_config_naming_a_foreign_module_is_refused(saved, tmp_path):
    def foreign(config):
        config["config"]["layers"][1]["module"] = "os"
        config["config"]["layers"][1]["class_name"] = "system"

    bad = _with_keras_config(saved, tmp_path / "bad.skembedrec", foreign)
    with pytest.raises(ValueError, match=r"class 'system' \(module 'os'\)"):
        EmbeddingRatingRegressor.load(bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 99}, r"format version 99; this skembedrec .* reads .* 2 up to 3"),
        ({"format_version": "1"}, r"unknown format version '1'"),
        ({"format": "other.Model"}, r"not a skembedrec model file: its format is 'other.Model'"),
    ],
    ids=["newer", "not-an-int", "other-format"],
)
def test_unknown_format_versions_are_refused(saved, tmp_path, change, message):
    meta = {**_meta(saved), **change}
    bad = _rewrite(saved, tmp_path / "bad.skembedrec",
                   replace={"skembedrec.json": json.dumps(meta)})
    with pytest.raises(ValueError, match=message):
        EmbeddingRatingRegressor.load(bad)


def test_tampered_parameters_are_refused(saved, tmp_path):
    meta = _meta(saved)
    meta["params"]["__dict__"]["n_factors"] = -3
    bad = _rewrite(saved, tmp_path / "bad.skembedrec",
                   replace={"skembedrec.json": json.dumps(meta)})
    with pytest.raises(ValueError, match=r"bad\.skembedrec.*'n_factors' parameter"):
        EmbeddingRatingRegressor.load(bad)


def test_inconsistent_vocabulary_is_refused(saved, tmp_path):
    meta = _meta(saved)
    meta["fitted"]["n_users_"] += 1
    bad = _rewrite(saved, tmp_path / "bad.skembedrec",
                   replace={"skembedrec.json": json.dumps(meta)})
    with pytest.raises(ValueError, match=r"bad\.skembedrec.*inconsistent"):
        EmbeddingRatingRegressor.load(bad)


@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.3, 0.6, 0.9, 0.999])
def test_truncated_file_gives_a_clear_error(saved, tmp_path, fraction):
    data = saved.read_bytes()
    bad = tmp_path / "cut.skembedrec"
    bad.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match=r"cut\.skembedrec.*(truncated|corrupted)"):
        EmbeddingRatingRegressor.load(bad)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.3, 0.5, 0.7, 0.9])
def test_corrupted_file_gives_a_clear_error(saved, tmp_path, fraction):
    data = bytearray(saved.read_bytes())
    start = int(len(data) * fraction)
    data[start : start + 16] = bytes(b ^ 0x5A for b in data[start : start + 16])
    bad = tmp_path / "flip.skembedrec"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flip\.skembedrec.*(truncated|corrupted|not a)"):
        EmbeddingRatingRegressor.load(bad)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.skembedrec"):
        EmbeddingRatingRegressor.load(tmp_path / "nowhere.skembedrec")


def test_side_features_and_continued_training_survive_a_round_trip(tmp_path):
    X, y = make_ratings(n_users=30, n_items=40, n_ratings=600, random_state=0)
    rng = np.random.RandomState(0)
    users = pd.DataFrame(
        {"age": rng.randint(18, 70, 32), "job": rng.choice(["a", "b", None], 32),
         "member": pd.array(rng.choice([1, 2, None], 32), dtype="Int64")},
        index=pd.Index(range(32), name="user_id"),
    )
    items = pd.DataFrame(
        {"genres": [["x", "y"][: i % 3] for i in range(40)],
         "kind": pd.Categorical(rng.choice(["film", "show"], 40))},
        index=pd.Index(range(40), name="item_id"),
    )
    first = X.user_id < 25
    est = EmbeddingRatingRegressor(**FAST, user_features=users, item_features=items)
    est.fit(X[first], y[first])
    est.save(tmp_path / "f.skembedrec")
    back = EmbeddingRatingRegressor.load(tmp_path / "f.skembedrec")
    pd.testing.assert_frame_equal(back.user_features, users)
    pd.testing.assert_frame_equal(back.item_features, items)
    assert np.array_equal(back.predict(X), est.predict(X))
    # Continuing to train (Adam state, seed, vocabulary) gives the same model either way.
    est.partial_fit(X[~first], y[~first])
    back.partial_fit(X[~first], y[~first])
    assert np.array_equal(back.predict(X), est.predict(X))


def test_a_member_from_another_file_is_refused(saved, tmp_path):
    other = EmbeddingRatingRegressor(**FAST).fit(*make_ratings(n_users=60, n_items=80,
                                                                n_ratings=500, random_state=3))
    other.save(tmp_path / "other.skembedrec")
    with zipfile.ZipFile(tmp_path / "other.skembedrec") as zf:
        arrays = zf.read("arrays.npz")
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(tmp_path / "mixed.skembedrec", "w") as z:
        for name in zin.namelist():
            z.writestr(name, arrays if name == "arrays.npz" else zin.read(name))
    with pytest.raises(ValueError, match=r"mixed\.skembedrec.*'arrays.npz' does not match"):
        EmbeddingRatingRegressor.load(tmp_path / "mixed.skembedrec")


def _stored_copy(src, dst):
    """``src`` with every member stored uncompressed, as save stores a large model's."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
    return dst


def _member_span(path, name):
    """Where the bytes of the member ``name`` lie in the zip at ``path``: (start, end)."""
    data = pathlib.Path(path).read_bytes()
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    local = info.header_offset
    start = local + 30 + int.from_bytes(data[local + 26:local + 28], "little") + int.from_bytes(
        data[local + 28:local + 30], "little")
    return start, start + info.compress_size


def _flipped(path, dst, position):
    data = bytearray(pathlib.Path(path).read_bytes())
    data[position] ^= 0x5A
    pathlib.Path(dst).write_bytes(bytes(data))
    return dst


def test_stored_members_load_identically(saved, fitted, ratings, tmp_path):
    stored = _stored_copy(saved, tmp_path / "stored.skembedrec")
    with zipfile.ZipFile(stored) as zf:
        assert {info.compress_type for info in zf.infolist()} == {zipfile.ZIP_STORED}
    X, _ = ratings
    assert np.array_equal(EmbeddingRatingRegressor.load(stored).predict(X), fitted.predict(X))


@pytest.mark.parametrize("name", ["arrays.npz", "model.keras"])
@pytest.mark.parametrize("where", [0.0, 0.5, 1.0])
def test_a_stored_member_changed_after_save_is_refused_by_its_digest(saved, tmp_path, name,
                                                                      where):
    # Stored members skip the zip's CRC pass: the digest, over the same bytes, catches this.
    stored = _stored_copy(saved, tmp_path / "stored.skembedrec")
    start, end = _member_span(stored, name)
    bad = _flipped(stored, tmp_path / "bad.skembedrec", start + int((end - start - 1) * where))
    with pytest.raises(ValueError, match=rf"bad\.skembedrec.*corrupted.*'{name}' does not "
                       "match the SHA-256 digest"):
        EmbeddingRatingRegressor.load(bad)


def test_a_stored_member_hashed_in_many_chunks_loads_or_is_refused(saved, fitted, ratings,
                                                                    tmp_path, monkeypatch):
    # Large members are read in chunks, each hashed while the next is read.
    from skembedrec import _archive

    monkeypatch.setattr(_archive, "_HASH_CHUNK", 4097)
    stored = _stored_copy(saved, tmp_path / "stored.skembedrec")
    X, _ = ratings
    assert np.array_equal(EmbeddingRatingRegressor.load(stored).predict(X), fitted.predict(X))
    start, end = _member_span(stored, "model.keras")
    assert end - start > 10 * 4097
    bad = _flipped(stored, tmp_path / "bad.skembedrec", start + 5 * 4097 + 11)
    with pytest.raises(ValueError, match=r"bad\.skembedrec.*'model.keras' does not match"):
        EmbeddingRatingRegressor.load(bad)


def test_a_stored_member_reaching_past_the_end_is_refused(saved, tmp_path):
    stored = _stored_copy(saved, tmp_path / "stored.skembedrec")
    data = bytearray(stored.read_bytes())
    entry = data.find(b"PK\x01\x02")
    while data[entry + 46:entry + 46 + len(b"model.keras")] != b"model.keras":
        entry = data.find(b"PK\x01\x02", entry + 4)
    for offset in (20, 24):  # the central directory's stored and declared sizes
        data[entry + offset:entry + offset + 4] = (len(data) + 10).to_bytes(4, "little")
    (tmp_path / "long.skembedrec").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"long\.skembedrec.*truncated or corrupted.*"
                       r"'model.keras'.*past the end"):
        EmbeddingRatingRegressor.load(tmp_path / "long.skembedrec")


def test_a_stored_member_whose_local_header_names_another_is_refused(saved, tmp_path):
    stored = _stored_copy(saved, tmp_path / "stored.skembedrec")
    data = stored.read_bytes()
    with zipfile.ZipFile(stored) as zf:
        local = zf.getinfo("arrays.npz").header_offset
    renamed = data[:local + 30] + b"arrayz.npz" + data[local + 40:]
    (tmp_path / "renamed.skembedrec").write_bytes(renamed)
    with pytest.raises(ValueError, match=r"renamed\.skembedrec.*'arrays.npz'.*local header "
                       r"names 'arrayz.npz'"):
        EmbeddingRatingRegressor.load(tmp_path / "renamed.skembedrec")


def test_a_nested_stored_member_is_crc_checked_unless_its_zip_was_digested(saved, tmp_path):
    # A pickle's Keras bytes have no digest: the CRC of each stored member is checked.
    from skembedrec._archive import DEFAULT_LIMITS, read_zip

    with zipfile.ZipFile(saved) as zf:
        model = zf.read("model.keras")
    (tmp_path / "m.keras").write_bytes(model)
    start, end = _member_span(tmp_path / "m.keras", "model.weights.h5")
    bad = bytearray(model)
    bad[(start + end) // 2] ^= 0x5A
    members = frozenset({"config.json", "metadata.json", "model.weights.h5"})
    with pytest.raises(ValueError, match=r"'the pickle' is truncated or corrupted.*"
                       r"'model.weights.h5'.*CRC-32 does not match"):
        read_zip(bytes(bad), "the pickle", members, DEFAULT_LIMITS)
    views = read_zip(bytes(bad), "the file", members, DEFAULT_LIMITS, verified=True)
    assert bytes(views["model.weights.h5"]) == bytes(bad[start:end])  # no copy, no CRC


def test_arrays_are_read_as_copies_that_own_their_memory(saved):
    from skembedrec._archive import DEFAULT_LIMITS, read_npz

    with zipfile.ZipFile(saved) as zf:
        data = zf.read("arrays.npz")
    arrays = read_npz(data, "the file", "arrays.npz", DEFAULT_LIMITS, verified=True)
    expected = _npz_arrays(saved)
    assert sorted(arrays) == sorted(expected)
    for name, array in arrays.items():
        assert array.flags.owndata and array.flags.writeable and array.flags.aligned, name
        assert array.dtype == expected[name].dtype and np.array_equal(array, expected[name])


def _npz_arrays(path):
    with zipfile.ZipFile(path) as zf, np.load(io.BytesIO(zf.read("arrays.npz"))) as npz:
        return {name: npz[name] for name in npz.files}


def test_seen_is_stored_compact_without_its_values(fitted, saved, loaded):
    arrays = _npz_arrays(saved)
    assert "fitted/seen_/data" not in arrays  # all True: rebuilt at load
    assert arrays["fitted/seen_/indices"].dtype == np.int32
    assert arrays["fitted/seen_/indptr"].dtype == np.int32
    for part in ("data", "indices", "indptr"):
        a, b = getattr(loaded.seen_, part), getattr(fitted.seen_, part)
        assert a.dtype == b.dtype and np.array_equal(a, b), part


def test_a_boolean_sparse_array_with_false_values_keeps_them():
    import scipy.sparse as sp

    from skembedrec._codec import decode

    value = sp.csr_array((np.array([True, False]), np.array([0, 1]), np.array([0, 1, 2])),
                         shape=(2, 2))
    encoder = Encoder()
    back = decode(encoder.encode(value, "a value", "v"), encoder.arrays)
    assert np.array_equal(back.data, value.data) and np.array_equal(back.indices, value.indices)


def test_seen_with_indices_out_of_range_is_refused(saved, tmp_path):
    arrays = _npz_arrays(saved)
    arrays["fitted/seen_/indices"] = arrays["fitted/seen_/indices"] + 10**6
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    bad = _rewrite(saved, tmp_path / "bad.skembedrec", replace={"arrays.npz": buffer.getvalue()})
    with pytest.raises(ValueError, match=r"corrupted or inconsistent.*indices must be < 80"):
        EmbeddingRatingRegressor.load(bad)


def test_large_members_are_stored_and_small_ones_deflated(fitted, tmp_path):
    from skembedrec._archive import write_zip

    path = str(tmp_path / "members.zip")
    write_zip(path, {"small.json": b"{}" * 100, "big.npz": bytes(2 << 20)})
    with zipfile.ZipFile(path) as zf:
        kinds = {info.filename: info.compress_type for info in zf.infolist()}
    assert kinds == {"small.json": zipfile.ZIP_DEFLATED, "big.npz": zipfile.ZIP_STORED}


FIXTURES = REPO_ROOT / "tests" / "fixtures"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("model_v*.skembedrec")))
def test_committed_fixture_loads_with_identical_predictions(fixture, tmp_path):
    # Written by tests/fixtures/make_model_fixture.py; a format change that breaks this
    # breaks every file users saved. The tolerance only absorbs float32 rounding of
    # another CPU; on the machine that wrote it the predictions are bit-identical.
    with zipfile.ZipFile(FIXTURES / fixture) as archive:
        written_by = json.loads(archive.read("skembedrec.json"))["keras_version"]
    if _version(keras.__version__) < _version(written_by):
        pytest.skip(f"the fixture's Keras model was written by Keras {written_by}; Keras "
                    f"{keras.__version__} is older (the documented policy: the writing "
                    "Keras release or a newer one reads it)")
    expected = np.load(FIXTURES / fixture.replace(".skembedrec", "_expected.npz"))
    est = EmbeddingRatingRegressor.load(FIXTURES / fixture)
    X = pd.DataFrame({"user_id": expected["users"].astype(object), "item_id": expected["items"]})
    np.testing.assert_allclose(est.predict(X), expected["predictions"], rtol=0, atol=1e-6)
    # Saved again in the current format, it comes back with the same pairs and predictions.
    est.save(tmp_path / "again.skembedrec")
    again = EmbeddingRatingRegressor.load(tmp_path / "again.skembedrec")
    assert (again.seen_ != est.seen_).nnz == 0 and again.seen_.shape == est.seen_.shape
    assert again.seen_.data.all()
    np.testing.assert_array_equal(again.predict(X), est.predict(X))


def test_saved_file_has_the_usual_permissions(fitted, tmp_path):
    mask = os.umask(0o022)
    try:
        fitted.save(tmp_path / "m.skembedrec")
    finally:
        os.umask(mask)
    assert (tmp_path / "m.skembedrec").stat().st_mode & 0o777 == 0o644



def test_a_config_declaring_huge_tables_is_refused_before_building(tmp_path, ratings):
    # The attack of issue 16: 20,000,000-row tables declared in the Keras config made load
    # build and fill them (39 s, 15.8 GB) before the weights failed to match.
    import resource
    import time

    X, y = ratings
    est = EmbeddingRatingRegressor(**{**FAST, "implicit": True}).fit(X, y)
    est.save(tmp_path / "m.skembedrec")
    def huge(config):
        for layer in config["config"]["layers"]:
            for key in ("input_dim", "n_rows"):
                if key in layer["config"]:
                    layer["config"][key] = 20_000_000

    bad = _with_keras_config(tmp_path / "m.skembedrec", tmp_path / "huge.skembedrec", huge)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"huge\.skembedrec.*declares (input_dim|n_rows)="
                       r"20000000; its tables must have as many rows as the file's "
                       r"vocabularies plus one \(\[61, 81\]\)"):
        EmbeddingRatingRegressor.load(bad)
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB


def test_save_to_an_existing_directory_raises_and_writes_nothing(fitted, tmp_path):
    directory = tmp_path / "models"
    directory.mkdir()
    with pytest.raises(IsADirectoryError, match=r"models'.* is a directory.*model\.skembedrec"):
        fitted.save(directory)
    assert list(directory.iterdir()) == [] and sorted(tmp_path.iterdir()) == [directory]


def test_save_replaces_an_existing_file(fitted, ratings, tmp_path):
    path = tmp_path / "model.skembedrec"
    path.write_bytes(b"an older file")
    fitted.save(path)
    loaded = EmbeddingRatingRegressor.load(path)
    X = ratings[0].head(20)
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    assert [p.name for p in tmp_path.iterdir()] == ["model.skembedrec"]


def test_load_of_a_directory_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"is a directory, not a skembedrec model file"):
        EmbeddingRatingRegressor.load(tmp_path)
