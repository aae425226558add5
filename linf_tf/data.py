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
      -> regroup the taus of one image -> cache (decoded images, so later epochs skip the codec)
      -> shuffle images -> patches, a band of patch rows at a time (numpy strided copy)
      -> shuffle patches -> batch -> float32 scaling and one random flip/rotation per example,
         identical for x and y (numpy, one call per batch) -> prefetch

Samples travel as uint16 (8- and 16-bit sources share one dtype) until the float32 conversion of
each batch. Memory of an in-memory cache: (1 + len(taus)) * 2 bytes per sample, ~100 MB per DIV2K
image at 5 taus (80 GB for the 800 training images), so pass a file path as ``cache`` there.

Channels: images with different channel counts cannot share a batch, so every image is
converted to the requested ``channels`` (1 or 3) before compression, see ``convert_channels``.

Sources: a sequence whose items are file paths, ``ImageData`` or uint8/uint16 arrays (HxW or
HxWxC), or a ``tf.data.Dataset`` of uint8/uint16 image tensors (e.g. ``div2k_source``).
Sequence items are loaded inside ``tf.numpy_function`` by index, so a dataset built from a
sequence cannot be serialized (no tf.data service, no saving of the graph); it runs in-process.
"""

from __future__ import annotations

import glob
import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import skimage.data
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view

from linf_tf import codec
from linf_tf.imageio import ImageData, read_image

DEFAULT_TAUS: tuple[int, ...] = (6, 8, 10, 12, 14)  # paper §4.1/4.3
DEFAULT_PATCH_SIZE = 64  # paper §4.2
DEFAULT_STRIDE = 32  # paper §4.2
# Patch rows cut per step: enough to amortise the per-step overhead, few enough to bound memory.
PATCH_ROWS_PER_BAND = 4
TRAIN_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".bmp"})
# RGB and gray images from skimage.data that ship inside the wheel (no download needed).
SKIMAGE_SAMPLE_NAMES: tuple[str, ...] = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "colorwheel",
    "moon",
)
# ITU-R BT.601 luma weights, the convention of OpenCV's and PIL's RGB -> gray conversion.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
DIV2K_ZIPS = {
    "train": ("DIV2K_train_HR.zip", "DIV2K_train_LR_bicubic_X2.zip"),
    "validation": ("DIV2K_valid_HR.zip", "DIV2K_valid_LR_bicubic_X2.zip"),
}

ImageItem = str | Path | np.ndarray | ImageData
ImageSource = Sequence[ImageItem] | tf.data.Dataset


# --- sources -------------------------------------------------------------------------------------


def list_image_files(pattern_or_dir: str | Path) -> list[Path]:
    """PNG/TIFF/BMP files in a directory (not recursive) or matching a glob pattern, sorted.

    Raises FileNotFoundError when nothing matches, so that a typo does not train on zero images.
    """
    location = Path(pattern_or_dir)
    candidates = location.iterdir() if location.is_dir() else map(Path, glob.glob(str(pattern_or_dir)))
    files = sorted(p for p in candidates if p.is_file() and p.suffix.lower() in TRAIN_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"no training images ({', '.join(sorted(TRAIN_SUFFIXES))}) found at {pattern_or_dir!s}"
        )
    return files


def skimage_sample_images(names: Sequence[str] = SKIMAGE_SAMPLE_NAMES) -> list[ImageData]:
    """The embedded default training set: images bundled with scikit-image (works offline).

    Gray and RGB images are mixed; ``make_training_dataset(channels=...)`` unifies them.
    """
    images = []
    for name in names:
        pixels = getattr(skimage.data, name)()
        if pixels.dtype != np.uint8:
            raise ValueError(f"skimage.data.{name} is {pixels.dtype}, expected uint8")
        images.append(ImageData(pixels=np.ascontiguousarray(pixels), bit_depth=8))
    return images


def div2k_source(
    manual_dir: str | Path, split: str = "train", data_dir: str | Path | None = None
) -> tf.data.Dataset:
    """DIV2K high-resolution images (uint8 HxWx3) through tensorflow-datasets, fully offline.

    The ``div2k`` builder cannot download here, so it is prepared from zips placed by hand in
    ``manual_dir`` (tfds looks them up there by file name). Download from
    https://data.vision.ee.ethz.ch/cvl/DIV2K/ into ``manual_dir``:

        DIV2K_train_HR.zip, DIV2K_valid_HR.zip (the originals used for training/validation), and
        DIV2K_train_LR_bicubic_X2.zip, DIV2K_valid_LR_bicubic_X2.zip (the builder's default
        ``bicubic_x2`` config requires its low-resolution pairs even though only ``hr`` is used).

    The first call extracts and converts them into ``data_dir`` (tfds default ~/tensorflow_datasets;
    several GB, about the size of the zips); later calls reuse it. Pass the result as ``images``
    to make_training_dataset / make_validation_dataset (split="validation").
    """
    manual_dir = Path(manual_dir).expanduser()
    if split not in DIV2K_ZIPS:
        raise ValueError(f"split must be one of {sorted(DIV2K_ZIPS)}, got {split!r}")
    if not manual_dir.is_dir():
        raise FileNotFoundError(f"DIV2K manual_dir {manual_dir} does not exist; see div2k_source's docstring")
    missing = [name for name in _all_div2k_zips() if not (manual_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"DIV2K zips missing from {manual_dir}: {', '.join(missing)}; download them from "
            "https://data.vision.ee.ethz.ch/cvl/DIV2K/ (this machine cannot download them)"
        )
    import tensorflow_datasets as tfds  # lazy: slow to import and only needed for DIV2K

    builder = tfds.builder("div2k/bicubic_x2", data_dir=None if data_dir is None else str(data_dir))
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    try:
        builder.download_and_prepare(download_config=config)
    except ModuleNotFoundError as exc:  # tfds imports some of its dependencies lazily
        raise ModuleNotFoundError(
            f"tensorflow-datasets cannot prepare DIV2K: its dependency {exc.name!r} is not installed",
            name=exc.name,
        ) from exc
    return builder.as_dataset(split=split, shuffle_files=False).map(lambda example: example["hr"])


def _all_div2k_zips() -> list[str]:
    # The builder prepares both splits at once, so it needs all four zips whatever the split.
    return [name for names in DIV2K_ZIPS.values() for name in names]


# --- per-image numpy helpers (run inside tf.numpy_function) --------------------------------------


def max_value(bit_depth: int) -> int:
    """Largest sample value at ``bit_depth`` bits: the divisor that scales samples to [0, 1]."""
    return (1 << int(bit_depth)) - 1


def convert_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Return ``pixels`` as HxWx``channels`` (1 or 3), same dtype.

    * gray -> RGB: the gray plane repeated three times;
    * RGB -> gray: BT.601 luma (0.299 R + 0.587 G + 0.114 B), rounded to the nearest integer;
    * an alpha plane (gray+alpha, RGBA) is dropped first.
    Other channel counts (stacks, multispectral data) raise ValueError.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    planes = pixels[:, :, np.newaxis] if pixels.ndim == 2 else pixels
    if planes.shape[2] in (2, 4):  # drop alpha: it is not part of the picture to restore
        planes = planes[:, :, : planes.shape[2] - 1]
    if planes.shape[2] not in (1, 3):
        raise ValueError(f"cannot convert {planes.shape[2]} channels to {channels}; expected gray or RGB")
    if planes.shape[2] == channels:
        return np.ascontiguousarray(planes)
    if channels == 3:
        return np.repeat(planes, 3, axis=2)
    luma = np.rint(planes.astype(np.float64) @ LUMA_WEIGHTS)
    return luma.astype(pixels.dtype)[:, :, np.newaxis]


def compress_roundtrip(image: np.ndarray, tau: int, bit_depth: int | None = None) -> np.ndarray:
    """Encode ``image`` with the near-lossless codec at ``tau`` and return what decoding gives: same
    shape and dtype. The encoder's own reconstruction is bit-identical to the decoder's output
    (tested in tests/test_codec.py), so the separate decode is skipped: half the codec time.

    ``bit_depth`` defaults to the codec's (8 for uint8, 16 for uint16).
    """
    depth = None if bit_depth is None else int(bit_depth)
    _, decoded = codec.encode_with_decoded(image, int(tau), bit_depth=depth)
    return decoded.reshape(image.shape)


def _roundtrip_uint16(image: np.ndarray, tau: np.int32, bit_depth: np.int32) -> np.ndarray:
    # The pipeline carries every image as uint16 so that 8- and 16-bit sources share one dtype;
    # 8-bit data goes through the codec as uint8, its natural input.
    narrow = image.astype(np.uint8) if bit_depth <= 8 else image
    return compress_roundtrip(narrow, int(tau), int(bit_depth)).astype(np.uint16)


def _as_image_data(item: ImageItem) -> ImageData:
    if isinstance(item, ImageData):
        return item
    if isinstance(item, np.ndarray):
        if item.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"image arrays must be uint8 or uint16, got {item.dtype}")
        return ImageData(pixels=item, bit_depth=8 if item.dtype == np.uint8 else 16)
    return read_image(item)


# --- tf.data stages ------------------------------------------------------------------------------


def count_patches(height: int, width: int, patch_size: int, stride: int) -> int:
    """Number of patch_size x patch_size patches, stride apart, that fit inside HxW (VALID)."""
    rows = (height - patch_size) // stride + 1 if height >= patch_size else 0
    cols = (width - patch_size) // stride + 1 if width >= patch_size else 0
    return rows * cols


def load_images(
    images: ImageSource, channels: int, input_context: tf.distribute.InputContext | None = None
) -> tf.data.Dataset:
    """Dataset of ``(pixels uint16 HxWxchannels, bit_depth int32)``, sharded per input pipeline.

    Sharding happens before loading, on the image level, so each pipeline reads only its images.
    """
    if isinstance(images, tf.data.Dataset):
        return _load_tensor_images(_shard(images, input_context), channels)
    items = list(images)
    if not items:
        raise ValueError("no training images given")

    def load(index: np.int64) -> tuple[np.ndarray, np.int32]:
        image = _as_image_data(items[int(index)])
        pixels = convert_channels(image.pixels, channels).astype(np.uint16)
        return pixels, np.int32(image.bit_depth)

    indices = _shard(tf.data.Dataset.range(len(items)), input_context)
    return indices.map(
        lambda index: _set_image_shape(tf.numpy_function(load, [index], (tf.uint16, tf.int32)), channels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _load_tensor_images(images: tf.data.Dataset, channels: int) -> tf.data.Dataset:
    def load(pixels: np.ndarray) -> tuple[np.ndarray, np.int32]:
        depth = 8 if pixels.dtype == np.uint8 else 16
        return convert_channels(pixels, channels).astype(np.uint16), np.int32(depth)

    return images.map(
        lambda pixels: _set_image_shape(tf.numpy_function(load, [pixels], (tf.uint16, tf.int32)), channels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _set_image_shape(loaded: list[tf.Tensor], channels: int) -> tuple[tf.Tensor, tf.Tensor]:
    pixels, bit_depth = loaded
    pixels.set_shape([None, None, channels])
    bit_depth.set_shape([])
    return pixels, bit_depth


def _shard(dataset: tf.data.Dataset, input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
    if input_context is None or input_context.num_input_pipelines == 1:
        return dataset
    return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)


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
    even when there are fewer images than cores.
    """
    tau_values = tf.constant(_check_taus(taus), tf.int32)

    def one_per_tau(pixels: tf.Tensor, bit_depth: tf.Tensor) -> tf.data.Dataset:
        return tf.data.Dataset.from_tensor_slices(tau_values).map(lambda tau: (pixels, tau, bit_depth))

    def roundtrip(pixels: tf.Tensor, tau: tf.Tensor, bit_depth: tf.Tensor) -> tuple[tf.Tensor, ...]:
        decoded = tf.numpy_function(_roundtrip_uint16, [pixels, tau, bit_depth], tf.uint16)
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
    """``(x uint16 HxWxC, y uint16 TxHxWxC, taus int32 T, bit_depth int32)`` per image.

    The T decoded versions of an image are regrouped into one element so that a cache stores
    the original once rather than once per tau.
    """
    num_taus = len(_check_taus(taus))
    per_tau = compress_each_tau(load_images(images, channels, input_context), taus)
    # flat_map emits the taus of one image consecutively and map keeps the order, so each batch
    # of num_taus elements is exactly one image (same shape: batching is valid). Batching copies
    # x num_taus times, but only transiently: x[0] is all that is kept (and cached).
    grouped = per_tau.batch(num_taus)
    return grouped.map(lambda x, y, tau, depth: (x[0], y, tau, depth[0]))


def extract_patches(images: np.ndarray, patch_size: int, stride: int) -> np.ndarray:
    """(N, H, W, C) -> (N, P, p, p, C): every p x p window ``stride`` apart (VALID), row-major.

    Same result as ``tf.image.extract_patches`` reshaped, but numpy's strided copy is ~10x faster
    on integer data (TF's kernel is slow for uint16).
    """
    count, height, width, channels = images.shape
    if height < patch_size or width < patch_size:  # too small for one patch: contributes nothing
        return np.empty((count, 0, patch_size, patch_size, channels), images.dtype)
    windows = sliding_window_view(images, (patch_size, patch_size), axis=(1, 2))[:, ::stride, ::stride]
    patches = np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3))  # (N, rows, cols, p, p, C)
    return patches.reshape(count, -1, patch_size, patch_size, channels)


def _band_patches(
    x: np.ndarray, y: np.ndarray, taus: np.ndarray, first_row: int, patch_size: int, stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patches of PATCH_ROWS_PER_BAND patch rows from ``first_row`` on: x repeated per tau, y of
    every tau, and tau; tau-major. Bands are numpy views of the cached images (no copy)."""
    top = int(first_row) * stride
    bottom = top + (PATCH_ROWS_PER_BAND - 1) * stride + patch_size
    originals = extract_patches(x[np.newaxis, top:bottom], patch_size, stride)[0]
    decoded = extract_patches(y[:, top:bottom], patch_size, stride)
    original = np.broadcast_to(originals, decoded.shape).reshape(-1, *decoded.shape[2:])
    tau = np.repeat(taus, decoded.shape[1]).astype(np.int32)
    return original, decoded.reshape(original.shape), tau


def _patches_of_image(
    x: tf.Tensor, y: tf.Tensor, taus: tf.Tensor, bit_depth: tf.Tensor, patch_size: int, stride: int
) -> tf.data.Dataset:
    """Patches of one image as batched ``(x, y, tau, max_value)`` elements, a few patch rows each.

    Cutting band by band bounds memory: with stride = patch/2 the patches of a whole image take
    4x its size for each of its 1 + T versions (~400 MB for a DIV2K image and 5 taus).
    """
    rows = tf.maximum((tf.shape(x)[0] - patch_size) // stride + 1, 0)
    peak = tf.cast(2**bit_depth - 1, tf.float32)  # max_value(bit_depth), in the graph

    def band(first_row: tf.Tensor) -> tuple[tf.Tensor, ...]:
        original, decoded, tau = tf.numpy_function(
            lambda *arrays: _band_patches(*arrays, patch_size=patch_size, stride=stride),
            [x, y, taus, first_row],
            (tf.uint16, tf.uint16, tf.int32),
        )
        shape = [None, patch_size, patch_size, x.shape[-1]]
        original.set_shape(shape)
        decoded.set_shape(shape)
        tau.set_shape([None])
        return original, decoded, tau, tf.fill(tf.shape(tau), peak)

    return tf.data.Dataset.range(0, tf.cast(rows, tf.int64), PATCH_ROWS_PER_BAND).map(band)


def dihedral_transform(patches: np.ndarray, index: int) -> np.ndarray:
    """Symmetry ``index`` (0-7) of square patches (..., H, W, C): rot90 by index % 4, then a
    left-right flip when index >= 4. The 8 indices are the 4 rotations and 4 reflections."""
    rotated = np.rot90(patches, index % 4, axes=(-3, -2))
    return np.flip(rotated, axis=-2) if index >= 4 else rotated


def random_dihedral(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply one random symmetry per example, the same to x[i] and y[i]: (x', y', choices).

    x, y: (B, p, p, C). Applying the same symmetry to both keeps |x - y| <= tau exact.
    """
    choices = rng.integers(0, 8, size=len(x))
    return _dihedral_per_example(x, choices), _dihedral_per_example(y, choices), choices


def _dihedral_per_example(patches: np.ndarray, choices: np.ndarray) -> np.ndarray:
    # Each pixel (its C samples) is viewed as one opaque C*itemsize-byte element: numpy's strided
    # copy of a rotated array then moves whole pixels instead of looping over 3 samples (~2x faster).
    pixels = np.ascontiguousarray(patches).view(np.dtype((np.void, patches.shape[-1] * patches.itemsize)))
    out = np.empty_like(pixels)
    for index in np.unique(choices):
        selected = choices == index
        out[selected] = dihedral_transform(pixels[selected], int(index))
    return out.view(patches.dtype).reshape(patches.shape)


def _finish_batch(
    x: np.ndarray, y: np.ndarray, tau: np.ndarray, peak: np.ndarray, seed: np.ndarray, augment: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer batch -> float32 in [0, 1] (divided by each example's max value), augmented.

    With ``augment`` each example gets a random symmetry drawn from ``seed``. Done in numpy on
    the integer samples: the equivalent per-example TF ops (tf.where, transpose) cost ~10x more.
    """
    if augment:
        x, y, _ = random_dihedral(x, y, np.random.default_rng(seed.astype(np.uint64)))
    # Division in float32 (not multiplication by 1/peak) so that values are exactly k / peak as
    # rounded by TF in the validation pipeline.
    peak = peak.astype(np.float32)
    per_pixel = peak[:, np.newaxis, np.newaxis, np.newaxis]
    return x.astype(np.float32) / per_pixel, y.astype(np.float32) / per_pixel, tau.astype(np.float32) / peak


def _finish_batch_op(
    x: tf.Tensor, y: tf.Tensor, tau: tf.Tensor, peak: tf.Tensor, seed: tf.Tensor, augment: bool
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    x_out, y_out, tau_out = tf.numpy_function(
        lambda *arrays: _finish_batch(*arrays, augment=augment),
        [x, y, tau, peak, seed],
        (tf.float32, tf.float32, tf.float32),
    )
    x_out.set_shape(x.shape)
    y_out.set_shape(y.shape)
    tau_out.set_shape(tau.shape)
    return x_out, y_out, tau_out


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
    shuffle_buffer: int = 4096,
    image_shuffle_buffer: int = 16,
    augment: bool = True,
) -> tf.data.Dataset:
    """Batches of ``(x, y, tau)``: float32 (B, p, p, channels) x2 and float32 (B,), see module doc.

    One pass over the result is one epoch (no repeat). Arguments:
        images: file paths / arrays / ImageData, or a tf.data.Dataset of images (div2k_source).
        taus: error bounds; every image is compressed once per tau (one tau = single-rate).
        batch_size: the *global* batch size; with ``input_context`` each pipeline yields
            ``input_context.get_per_replica_batch_size(batch_size)`` examples per batch.
        seed: drives the image and patch shuffles and the augmentation (different each epoch,
            the same sequence of epochs for the same seed).
        cache: decoded images are cached after the codec ('' in memory, a path for a file cache,
            None for none), so later epochs do not re-encode. The cache is complete only after one
            full pass; a cache file is suffixed per input pipeline.
        input_context: from ``strategy.distribute_datasets_from_function``; images are sharded
            between input pipelines.
        shuffle_buffer: patches in the patch shuffle buffer (~50 KB each while uint16).
        image_shuffle_buffer: whole decoded images (with all their taus) shuffled after the cache;
            each holds (1 + T) copies of an image, ~100 MB for DIV2K at 5 taus.
        augment: one random rotation/flip per example (False: patches as cut, e.g. to debug).
    Usage with a strategy::

        strategy.distribute_datasets_from_function(
            lambda ctx: make_training_dataset(files, batch_size=64, input_context=ctx))
    """
    _check_positive(patch_size=patch_size, stride=stride, batch_size=batch_size)
    _check_positive(shuffle_buffer=shuffle_buffer, image_shuffle_buffer=image_shuffle_buffer)
    _check_channels(channels)
    per_pipeline_batch = (
        batch_size if input_context is None else input_context.get_per_replica_batch_size(batch_size)
    )
    decoded = _cache(compressed_images(images, taus, channels, input_context), cache, input_context)
    decoded = decoded.shuffle(image_shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    # Parallel interleave: images are cut on all cores, and neighbouring patches come from
    # several images, which helps the patch shuffle buffer mix.
    patches = decoded.interleave(
        lambda x, y, tau, depth: _patches_of_image(x, y, tau, depth, patch_size, stride),
        cycle_length=tf.data.AUTOTUNE,
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    patches = patches.unbatch().shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    batches = patches.batch(per_pipeline_batch, drop_remainder=True)
    # One augmentation seed per batch, from a seeded stream that differs every epoch.
    batch_seeds = tf.data.Dataset.random(seed=seed + 2, rerandomize_each_iteration=True).batch(2)
    batches = tf.data.Dataset.zip(batches, batch_seeds).map(
        lambda batch, batch_seed: _finish_batch_op(*batch, batch_seed, augment=augment),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
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
