"""Models: a small CNN from scratch, or EfficientNet-Lite0 (ImageNet) with a new classifier.

Only keras.layers / keras.ops are used, so the models build and run under the TensorFlow, JAX and
torch backends alike. Every model takes square RGB images with values in [0, 255] (see
data.Preprocess) and normalises inside, so a saved model.keras is self-contained.

The pretrained path is split in two so training is cheap on a CPU: a frozen part (normalisation +
backbone up to some block) whose outputs are computed once and cached, and a trainable part (the
remaining top blocks, if any, + dropout + dense) that trains on those cached tensors. `assemble`
joins them back into one model taking raw images; the layers are shared, not copied, so the
assembled model carries exactly the trained weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from generator.errors import UserError

BACKBONES = ("scratch", "efficientnet_lite0")
SCRATCH_SIZE = 96


PRETRAINED_SIZE = 160
"""EfficientNet-Lite0's default input: 160 px beat 128 px on every domain in our measurements and fits
`make train`'s 15-minute budget on 2 CPU cores, where the 224 px of its pretraining does not (README)."""


def default_size(backbone: str) -> int:
    """Input size when none is given: measured defaults (see PRETRAINED_SIZE), or a CPU-friendly 96 px."""
    if backbone == "efficientnet_lite0":
        return PRETRAINED_SIZE
    return SCRATCH_SIZE


def _check(backbone: str, num_classes: int, size: int, dropout: float) -> None:
    if backbone not in BACKBONES:
        raise UserError(f"unknown backbone {backbone!r}; choose one of: {', '.join(BACKBONES)}")
    if num_classes < 2:
        raise UserError(f"the training split has {num_classes} class(es); a classifier needs at least 2")
    if size < 16:
        raise UserError(f"--size {size} is too small; use at least 16 pixels")
    if not 0 <= dropout < 1:
        raise UserError(f"--dropout {dropout} must be in [0, 1)")


def scratch_cnn(num_classes: int, size: int = SCRATCH_SIZE, width: int = 32, depth: int = 4,
                dropout: float = 0.3, name: str = "scratch_cnn") -> keras.Model:
    """depth blocks of [conv3x3-BN-ReLU] x 2 + max-pool (filters width, 2*width, ... capped at 512),
    global average pooling, dropout, softmax. Global pooling keeps the parameter count independent of
    the input size; batch norm lets a small net train fast at a high learning rate."""
    _check("scratch", num_classes, size, dropout)
    if width < 1 or depth < 1:
        raise UserError(f"--width {width} and --depth {depth} must be at least 1")
    if size // 2 ** depth < 1:
        raise UserError(f"--depth {depth} halves a {size} px image to nothing; use a larger --size or smaller --depth")
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for b in range(depth):
        filters = min(512, width * 2 ** b)
        for c in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{b}_conv{c}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"block{b}_bn{c}")(x)
            x = layers.ReLU(name=f"block{b}_relu{c}")(x)
        x = layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name=name)


@dataclass
class Pretrained:
    """The pieces of a pretrained model: `frozen` (raw image -> cached tensor), `head` (cached tensor
    -> probabilities, the only part that trains) and `full` (raw image -> probabilities) sharing layers."""

    frozen: keras.Model
    head: keras.Model
    full: keras.Model
    cut: int  # last frozen block index; BLOCK_COUNT - 1 when only the classifier trains


def pretrained(num_classes: int, size: int | None = None, dropout: float = 0.3, trainable_blocks: int = 0,
               weights: str | None = "imagenet", backbone: str = "efficientnet_lite0") -> Pretrained:
    """EfficientNet-Lite0 with its top `trainable_blocks` MBConv blocks (and 1x1 head conv) trainable.

    trainable_blocks=0: frozen = whole backbone with average pooling (1280 features per image);
    head = dropout + dense. k > 0: frozen = backbone up to block 15-k (a feature map); head = blocks
    16-k..15, head conv, pooling, dropout, dense. Batch-norm layers stay frozen in the trainable
    blocks too (inference mode, ImageNet statistics): small, class-weighted batches would otherwise
    wreck their running statistics."""
    from . import backbone as bb

    size = size or bb.DEFAULT_SIZE
    _check(backbone, num_classes, size, dropout)
    if not 0 <= trainable_blocks < bb.BLOCK_COUNT:
        raise UserError(f"--trainable-blocks {trainable_blocks} must be in 0..{bb.BLOCK_COUNT - 1}")
    net = bb.efficientnet_lite0((size, size, 3), include_top=False, weights=weights, pooling="avg")
    normalise = bb.preprocessing_layer()
    dropout_layer = layers.Dropout(dropout, name="dropout")
    classifier = layers.Dense(num_classes, activation="softmax", name="classifier")

    image = keras.Input((size, size, 3), name="image")
    full = keras.Model(image, classifier(dropout_layer(net(normalise(image)))), name=f"{backbone}_classifier")

    if trainable_blocks == 0:
        cut = bb.BLOCK_COUNT - 1
        net.trainable = False
        frozen = keras.Model(image, net(normalise(image)), name="frozen")
        feats = keras.Input(tuple(net.output.shape[1:]), name="features")
        head = keras.Model(feats, classifier(dropout_layer(feats)), name="head")
    else:
        cut = bb.BLOCK_COUNT - 1 - trainable_blocks
        bb.set_trainable_from(net, cut + 1)
        for layer in net.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
        lower = bb.feature_model(net, cut)
        upper = bb.top_model(net, cut)
        frozen = keras.Model(image, lower(normalise(image)), name="frozen")
        frozen.trainable = False
        feats = keras.Input(tuple(lower.output.shape[1:]), name="features")
        head = keras.Model(feats, classifier(dropout_layer(upper(feats))), name="head")
    return Pretrained(frozen, head, full, cut)


TTA_VIEWS = {1: [()], 2: [(), (2,)], 4: [(), (2,), (1,), (1, 2)]}
"""Mirror images averaged at inference (--tta): none, left-right, or all four flips. Every class is
mirror-symmetric as a class (a mirrored diode is a diode), so a mirror image is a second look at the
same component; averaging four looks raised every domain by 0.1-1.5 points and hand-drawn transistors
by 10 (README, "Results")."""


def check_views(views: int) -> None:
    if views not in TTA_VIEWS:
        raise UserError(f"--tta {views} must be one of {', '.join(map(str, TTA_VIEWS))} (1 = off)")


@keras.saving.register_keras_serializable(package="image2circuit")
class Flip(layers.Layer):
    """Mirror a batch of images along spatial axes (1 = top-bottom, 2 = left-right); no weights."""

    def __init__(self, axes=(2,), **kwargs):
        super().__init__(**kwargs)
        self.axes = tuple(int(a) for a in axes)

    def call(self, images):
        return keras.ops.flip(images, axis=self.axes)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes)}


def with_flip_views(model: keras.Model, views: int = 4) -> keras.Model:
    """`model` averaged over `views` mirror images of its input (test-time augmentation inside the
    model, so model.keras, predict and the TFLite export all give the figures the report shows)."""
    check_views(views)
    if views == 1:
        return model
    image = keras.Input(tuple(model.input_shape[1:]), name="image")
    outs = [model(Flip(a, name="flip_" + "".join("_vh"[i] for i in a))(image) if a else image) for a in TTA_VIEWS[views]]
    return keras.Model(image, layers.Average(name="mean_over_flips")(outs), name=f"{model.name}_tta{views}")


def build_model(backbone: str = "scratch", num_classes: int = 8, size: int | None = None, width: int = 32,
                depth: int = 4, dropout: float = 0.3, trainable_blocks: int = 0,
                weights: str | None = "imagenet") -> keras.Model:
    """One model taking [0, 255] images of size x size: the scratch CNN, or the pretrained classifier.

    width/depth apply to "scratch"; trainable_blocks/weights to the pretrained backbone."""
    if backbone == "scratch":
        return scratch_cnn(num_classes, size or SCRATCH_SIZE, width, depth, dropout)
    _check(backbone, num_classes, size or 224, dropout)
    return pretrained(num_classes, size, dropout, trainable_blocks, weights, backbone).full
