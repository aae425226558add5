"""Training and validation input pipelines: original images, their codec round trips, patches.

Paper §4.2-4.3: every training image is compressed by the near-lossless codec for each error
bound tau of the run (multi-rate default tau = 6, 8, 10, 12, 14; one tau = single-rate), the whole
image is decoded, and only then are the original x and the decoded y cut into 64x64 patches with
stride 32. Each example is a triple ``(x, y, tau)``:

    x, y : float32 (..., patch, patch, channels), samples divided by the image's max value
           ``2**bit_depth - 1`` so they lie in [0, 1]
    tau  : float32 scalar per example, scaled the same way (tau / max value), so |x - y| <= tau.

Pipeline of ``make_training_dataset`` (each arrow a ``tf.data`` stage)::

    images -> shard (per input pipeline) -> load + channel conversion (tf.numpy_function)
      -> one element per (image, tau) -> codec round trip (tf.numpy_function, parallel map)
      -> regroup the taus of one image -> cache (whole images: x and the T decoded y)
      -> shuffle images, draw random seeds per image
      -> per image (parallel interleave over ``interleave_images`` images): its 4 orientations,
         a random order of its T x N (tau, patch) examples and a random symmetry (of 8) each;
         a batch's worth of examples at a time is cut *and* turned by one tf.gather of row
         segments, with the same indices for x and y
      -> groups of ``interleave_images`` such chunks shuffled together (so a batch mixes that
         many images) -> rebatch -> float32 scaling (TF ops, parallel map) -> prefetch

Later epochs therefore only turn, gather and scale in TF kernels: no Python runs per patch or
per batch, and nothing is unbatched into single patches (tf.data's per-element cost).

Samples keep one integer dtype until the float32 conversion of each batch: uint8 when every
image is known to hold at most 8 bits (file headers are probed, see ``sample_dtype``), otherwise
uint16 (e.g. any 12/16-bit image in the set). Memory:
    * in-memory cache: (1 + T) samples per pixel, i.e. (1 + T) bytes per pixel and channel for
      8-bit sources, twice that for 16-bit: 4.7 MB for a 512x512 RGB image at 5 taus, ~50 MB for
      a DIV2K image (2040x1356x3), 40 GB for the 800 DIV2K training images, so pass a file path
      as ``cache`` there. Patches are not cached: with stride = patch/2 they hold every pixel ~4
      times (the previous uint16 image cache held 2 (1 + T) bytes per sample).
    * each image being cut: its 4 orientations, 4 (1 + T) samples per pixel (~200 MB for 8-bit
      DIV2K), plus 1 KB of gather indices per example; ``interleave_images`` (8) of them at a
      time, and ``image_shuffle_buffer`` (16) cached images wait in the shuffle buffer.

Channels: images with different channel counts cannot share a batch, so every image is
converted to the requested ``channels`` (1 or 3) before compression, see ``convert_channels``.

Modules: the images (file lists, scikit-image samples, DIV2K, ``sample_dtype``) and their loading
into ``tf.data`` are :mod:`linf_tf.learn.sources`; the cutting of patches in their symmetries is
:mod:`linf_tf.learn.patches`; this module builds the pipelines from them (codec round trip, cache,
shuffles, batches, scaling).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from linf_tf import codec
from linf_tf.learn.patches import image_examples
from linf_tf.learn.sources import ImageSource, load_images
from linf_tf.pixels import max_value_for

DEFAULT_TAUS: tuple[int, ...] = (6, 8, 10, 12, 14)  # paper §4.1/4.3
DEFAULT_PATCH_SIZE = 64  # paper §4.2
DEFAULT_STRIDE = 32  # paper §4.2
# Images whose shuffled examples are interleaved into the batches: each batch mixes this many.
DEFAULT_INTERLEAVE_IMAGES = 8


max_value = max_value_for  # the divisor that scales samples to [0, 1]


def compress_roundtrip(image: np.ndarray, tau: int, bit_depth: int | None = None) -> np.ndarray:
    """Encode ``image`` with the near-lossless codec at ``tau`` and return what decoding gives: same
    shape and dtype. The encoder's own reconstruction is bit-identical to the decoder's output
    (tested in tests/test_codec.py), so the separate decode is skipped: half the codec time.

    ``bit_depth`` defaults to the codec's (8 for uint8, 16 for uint16).
    """
    depth = None if bit_depth is None else int(bit_depth)
    _, decoded = codec.encode_with_decoded(image, int(tau), bit_depth=depth)
    return decoded.reshape(image.shape)


def _roundtrip(image: np.ndarray, tau: np.int32, bit_depth: np.int32) -> np.ndarray:
    # 8-bit data goes through the codec as uint8, its natural input, even in a uint16 pipeline.
    narrow = image.astype(np.uint8, copy=False) if bit_depth <= 8 else image
    return compress_roundtrip(narrow, int(tau), int(bit_depth)).astype(image.dtype, copy=False)


def center_crop(pixels: tf.Tensor, crop_size: int | None) -> tf.Tensor:
    """Central crop_size x crop_size window (smaller sides kept whole); None keeps the image."""
    if crop_size is None:
        return pixels
    height, width = tf.shape(pixels)[0], tf.shape(pixels)[1]
    crop_h, crop_w = tf.minimum(height, crop_size), tf.minimum(width, crop_size)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return pixels[top : top + crop_h, left : left + crop_w]


def compress_each_tau(images: tf.data.Dataset, taus: Sequence[int]) -> tf.data.Dataset:
    """``(pixels, bit_depth)`` -> ``(x, y, tau, bit_depth)``, one element per image and tau.

    The codec runs in a parallel map so that the (GIL-releasing) C encoder keeps every core busy,
    also on the taus of a single image and when there are fewer images than cores.
    """
    tau_values = tf.constant(_check_taus(taus), tf.int32)

    def one_per_tau(pixels: tf.Tensor, bit_depth: tf.Tensor) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(tau_values).map(lambda tau: (pixels, tau, bit_depth))

    def roundtrip(pixels: tf.Tensor, tau: tf.Tensor, bit_depth: tf.Tensor) -> tuple[tf.Tensor, ...]:
        decoded = tf.numpy_function(_roundtrip, [pixels, tau, bit_depth], pixels.dtype)
        decoded.set_shape(pixels.shape)
        return pixels, decoded, tau, bit_depth

    return images.flat_map(one_per_tau).map(roundtrip, num_parallel_calls=tf.data.AUTOTUNE)


def _check_taus(taus: Sequence[int]) -> list[int]:
    taus = [int(tau) for tau in taus]
    if not taus or min(taus) < 0:
        raise ValueError(f"taus must be a non-empty list of non-negative ints, got {taus}")
    return taus


def _check_positive(**values: int | None) -> None:
    # Checked here because inside the pipeline a bad value only surfaces at iteration time,
    # as an error from deep inside tf.data.
    for name, value in values.items():
        if value is not None and (not isinstance(value, numbers.Integral) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")


def compressed_images(
    images: ImageSource,
    taus: Sequence[int],
    channels: int,
    input_context: tf.distribute.InputContext | None = None,
) -> tf.data.Dataset:
    """``(x HxWxC, y TxHxWxC, taus int32 T, bit_depth int32)`` per image; x, y of ``sample_dtype``.

    The T decoded versions of an image are regrouped into one element so that a cache stores
    the original once rather than once per tau.
    """
    num_taus = len(_check_taus(taus))
    per_tau = compress_each_tau(load_images(images, channels, input_context), taus)
    # flat_map emits the taus of one image consecutively and map keeps the order, so each batch
    # of num_taus elements is exactly one image (same shape: batching is valid). Batching copies
    # x num_taus times, but only transiently (a memcpy, ~1 % of the codec's time): x[0] is all
    # that is kept (and cached).
    grouped = per_tau.batch(num_taus)
    return grouped.map(lambda x, y, tau, depth: (x[0], y, tau, depth[0]))


def _shuffle_group(group: tuple[tf.Tensor, ...], seed: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """The examples of a group (one tuple of batched tensors) in a random order (gather: copies)."""
    order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(group[0])[0]), seed=seed)
    return tuple(tf.gather(part, order) for part in group)


def _to_unit_range(
    x: tf.Tensor, y: tf.Tensor, tau: tf.Tensor, peak: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Integer batch -> float32 in [0, 1], divided by each example's max value.

    Division in float32 (not multiplication by 1/peak) so that values are exactly k / peak, as in
    the validation pipeline.
    """
    per_pixel = peak[:, tf.newaxis, tf.newaxis, tf.newaxis]
    x, y = tf.cast(x, tf.float32) / per_pixel, tf.cast(y, tf.float32) / per_pixel
    return x, y, tf.cast(tau, tf.float32) / peak


def _cache(
    dataset: tf.data.Dataset, cache: str | None, input_context: tf.distribute.InputContext | None
) -> tf.data.Dataset:
    if cache is None:
        return dataset
    if cache and input_context is not None and input_context.num_input_pipelines > 1:
        # Each input pipeline holds different images: they must not share one cache file.
        cache = f"{cache}.shard{input_context.input_pipeline_id}-of-{input_context.num_input_pipelines}"
    return dataset.cache(cache)


# --- public builders -----------------------------------------------------------------------------


def make_training_dataset(
    images: ImageSource,
    taus: Sequence[int] = DEFAULT_TAUS,
    patch_size: int = DEFAULT_PATCH_SIZE,
    stride: int = DEFAULT_STRIDE,
    batch_size: int = 32,
    seed: int = 0,
    cache: str | None = "",
    input_context: tf.distribute.InputContext | None = None,
    channels: int = 3,
    interleave_images: int = DEFAULT_INTERLEAVE_IMAGES,
    image_shuffle_buffer: int = 16,
    augment: bool = True,
) -> tf.data.Dataset:
    """Batches of ``(x, y, tau)``: float32 (B, p, p, channels) x2 and float32 (B,), see module doc.

    One pass over the result is one epoch (no repeat). Arguments:
        images: file paths / arrays / ImageData, or a tf.data.Dataset of images (div2k_source).
        taus: error bounds; every image is compressed once per tau (one tau = single-rate).
        batch_size: the *global* batch size; with ``input_context`` each pipeline yields
            ``input_context.get_per_replica_batch_size(batch_size)`` examples per batch.
        seed: drives the image shuffle, the order of each image's examples and the augmentation
            (different each epoch, the same sequence of epochs for the same seed).
        cache: decoded images are cached after the codec ('' in memory, a path for a file cache,
            None for none), so later epochs do not re-encode. The cache is complete only after one
            full pass; a cache file is suffixed per input pipeline. Size: see the module doc.
        input_context: from ``strategy.distribute_datasets_from_function``; images are sharded
            between input pipelines.
        interleave_images: images cut at the same time (each holding its 4 orientations); a
            batch's worth of examples is cut from each in turn and groups of this many chunks are
            shuffled together, so every batch mixes up to this many images. (It replaces the
            former patch ``shuffle_buffer``.)
        image_shuffle_buffer: whole decoded images (with all their taus) shuffled after the cache;
            each holds (1 + T) copies of an image (~50 MB for 8-bit DIV2K at 5 taus).
        augment: one random rotation/flip per example (False: patches as cut, e.g. to debug).
    Usage with a strategy::

        strategy.distribute_datasets_from_function(
            lambda ctx: make_training_dataset(files, batch_size=64, input_context=ctx))
    """
    _check_positive(patch_size=patch_size, stride=stride, batch_size=batch_size)
    _check_positive(interleave_images=interleave_images, image_shuffle_buffer=image_shuffle_buffer)
    _check_channels(channels)
    per_pipeline_batch = (
        batch_size if input_context is None else input_context.get_per_replica_batch_size(batch_size)
    )
    decoded = _cache(compressed_images(images, taus, channels, input_context), cache, input_context)
    decoded = decoded.shuffle(image_shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    # Seeded random streams that differ every epoch (epochs differ, but repeat for the same seed):
    # four int64 per image (order and symmetry seeds), two per group.
    image_seeds = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True).batch(4)
    group_seeds = tf.data.Dataset.random(seed=seed + 2, rerandomize_each_iteration=True).batch(2)
    # A batch's worth of examples per image in turn, from interleave_images images at a time, cut
    # in parallel; then groups of interleave_images such chunks are shuffled together so that
    # every batch mixes those images. Batch-sized elements keep tf.data's per-element cost low.
    chunks = tf.data.Dataset.zip(decoded, image_seeds).interleave(
        lambda image, image_seed: image_examples(
            *image,
            image_seed,
            patch_size=patch_size,
            stride=stride,
            chunk=per_pipeline_batch,
            augment=augment,
        ),
        cycle_length=interleave_images,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    # rebatch, not unbatch + batch: no per-patch elements.
    groups = chunks.rebatch(interleave_images * per_pipeline_batch)
    groups = tf.data.Dataset.zip(groups, group_seeds).map(_shuffle_group, num_parallel_calls=tf.data.AUTOTUNE)
    batches = groups.rebatch(per_pipeline_batch, drop_remainder=True)
    batches = batches.map(_to_unit_range, num_parallel_calls=tf.data.AUTOTUNE)
    return batches.prefetch(tf.data.AUTOTUNE)


def make_validation_dataset(
    images: ImageSource,
    taus: Sequence[int] = DEFAULT_TAUS,
    crop_size: int | None = None,
    channels: int = 3,
    cache: str | None = None,
) -> tf.data.Dataset:
    """``(x, y, tau)`` per (image, tau) with batch size 1: float32 (1, H, W, C) x2 and (1,).

    ``crop_size`` compresses only the central crop_size x crop_size window (to bound memory and
    time on large images); None keeps whole images. Order: images in order, taus in order.
    """
    _check_positive(crop_size=crop_size)
    _check_channels(channels)
    loaded = load_images(images, channels).map(lambda pixels, depth: (center_crop(pixels, crop_size), depth))
    per_tau = compress_each_tau(loaded, taus)

    def to_example(x: tf.Tensor, y: tf.Tensor, tau: tf.Tensor, bit_depth: tf.Tensor) -> tuple[tf.Tensor, ...]:
        peak = tf.cast(2**bit_depth - 1, tf.float32)
        return tf.cast(x, tf.float32) / peak, tf.cast(y, tf.float32) / peak, tf.cast(tau, tf.float32) / peak

    examples = per_tau.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    return _cache(examples, cache, None).batch(1).prefetch(tf.data.AUTOTUNE)
