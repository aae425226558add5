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

Sources: a sequence whose items are file paths, ``ImageData`` or uint8/uint16 arrays (HxW or
HxWxC), or a ``tf.data.Dataset`` of uint8/uint16 image tensors (e.g. ``div2k_source``).
Sequence items are loaded inside ``tf.numpy_function`` by index, so a dataset built from a
sequence cannot be serialized (no tf.data service, no saving of the graph); it runs in-process.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import skimage.data
import tensorflow as tf
import tifffile
from numpy.lib.stride_tricks import sliding_window_view

from linf_tf import codec
from linf_tf.image_samples import ImageData
from linf_tf.imageio import list_images, read_image
from linf_tf.pixels import convert_channels, max_value_for

DEFAULT_TAUS: tuple[int, ...] = (6, 8, 10, 12, 14)  # paper §4.1/4.3
DEFAULT_PATCH_SIZE = 64  # paper §4.2
DEFAULT_STRIDE = 32  # paper §4.2
# Images whose shuffled examples are interleaved into the batches: each batch mixes this many.
DEFAULT_INTERLEAVE_IMAGES = 8
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
DIV2K_ZIPS = {
    "train": ("DIV2K_train_HR.zip", "DIV2K_train_LR_bicubic_X2.zip"),
    "validation": ("DIV2K_valid_HR.zip", "DIV2K_valid_LR_bicubic_X2.zip"),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

ImageItem = str | Path | np.ndarray | ImageData
ImageSource = Sequence[ImageItem] | tf.data.Dataset


# --- sources -------------------------------------------------------------------------------------


def list_image_files(pattern_or_dir: str | Path) -> list[Path]:
    """PNG/TIFF/BMP files in a directory (not recursive) or matching a glob pattern, sorted.

    Raises FileNotFoundError when nothing matches, so that a typo does not train on zero images.
    """
    files = list_images(pattern_or_dir, accept=lambda path: path.suffix.lower() in TRAIN_SUFFIXES)
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


def _as_image_data(item: ImageItem) -> ImageData:
    if isinstance(item, ImageData):
        return item
    if isinstance(item, np.ndarray):
        if item.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"image arrays must be uint8 or uint16, got {item.dtype}")
        return ImageData(pixels=item, bit_depth=8 if item.dtype == np.uint8 else 16)
    return read_image(item)


def sample_dtype(images: ImageSource) -> tf.DType:
    """The integer dtype the pipeline carries samples in: uint8 when every image is known to have
    at most 8 bits, else uint16 (always correct, twice the memory).

    Known without decoding: arrays by dtype, ``ImageData`` by bit depth, a dataset by its element
    dtype, PNG/TIFF files by their headers, BMP files (always 8-bit when read). Other files count
    as 16-bit.
    """
    if isinstance(images, tf.data.Dataset):
        return tf.uint8 if images.element_spec.dtype == tf.uint8 else tf.uint16
    return tf.uint8 if all(_at_most_8_bits(item) for item in images) else tf.uint16


def _at_most_8_bits(item: ImageItem) -> bool:
    if isinstance(item, ImageData):
        return item.bit_depth <= 8
    if isinstance(item, np.ndarray):
        return item.dtype == np.uint8
    path = Path(item)
    suffix = path.suffix.lower()
    try:
        if suffix == ".bmp":  # OpenCV reads every BMP as uint8
            return True
        if suffix == ".png":
            with path.open("rb") as handle:
                head = handle.read(26)
            # Bit depth is byte 24 (in the IHDR chunk); 1-8 bits are read as uint8.
            return head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] <= 8
        if suffix in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:  # reads the header, not the pixels
                return tif.series[0].dtype in (np.uint8, np.bool_)
    except (OSError, IndexError, ValueError, tifffile.TiffFileError):
        pass  # unreadable here: read_image reports it properly at load time
    return False


# --- tf.data stages ------------------------------------------------------------------------------


def count_patches(height: int, width: int, patch_size: int, stride: int) -> int:
    """Number of patch_size x patch_size patches, stride apart, that fit inside HxW (VALID)."""
    rows = (height - patch_size) // stride + 1 if height >= patch_size else 0
    cols = (width - patch_size) // stride + 1 if width >= patch_size else 0
    return rows * cols


def load_images(
    images: ImageSource,
    channels: int,
    input_context: tf.distribute.InputContext | None = None,
    dtype: tf.DType | None = None,
) -> tf.data.Dataset:
    """Dataset of ``(pixels HxWxchannels, bit_depth int32)``, sharded per input pipeline.

    ``pixels`` are ``dtype`` (uint8 or uint16; None: ``sample_dtype(images)``). Sharding happens
    before loading, on the image level, so each pipeline reads only its images.
    """
    if isinstance(images, tf.data.Dataset):
        dtype = sample_dtype(images) if dtype is None else dtype
        return _load_tensor_images(_shard(images, input_context), channels, dtype)
    items = list(images)
    if not items:
        raise ValueError("no training images given")
    dtype = sample_dtype(items) if dtype is None else dtype

    def load(index: np.int64) -> tuple[np.ndarray, np.int32]:
        item = items[int(index)]
        image = _as_image_data(item)
        if image.bit_depth > 8 and dtype == tf.uint8:  # the header probe was wrong
            raise ValueError(f"{item}: {image.bit_depth}-bit image in a pipeline built for 8-bit images")
        pixels = convert_channels(image.pixels, channels).astype(dtype.as_numpy_dtype, copy=False)
        return pixels, np.int32(image.bit_depth)

    indices = _shard(tf.data.Dataset.range(len(items)), input_context)
    return indices.map(
        lambda index: _set_image_shape(tf.numpy_function(load, [index], (dtype, tf.int32)), channels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _load_tensor_images(images: tf.data.Dataset, channels: int, dtype: tf.DType) -> tf.data.Dataset:
    def load(pixels: np.ndarray) -> tuple[np.ndarray, np.int32]:
        depth = 8 if pixels.dtype == np.uint8 else 16
        return convert_channels(pixels, channels).astype(dtype.as_numpy_dtype, copy=False), np.int32(depth)

    return images.map(
        lambda pixels: _set_image_shape(tf.numpy_function(load, [pixels], (dtype, tf.int32)), channels),
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


def extract_patches(images: np.ndarray, patch_size: int, stride: int) -> np.ndarray:
    """(N, H, W, C) -> (N, P, p, p, C): every p x p window ``stride`` apart (VALID), row-major.

    Same result as ``tf.image.extract_patches`` reshaped. A numpy reference for the patches that
    the training pipeline cuts (by ``tf.gather``, see ``_image_examples``).
    """
    count, height, width, channels = images.shape
    if height < patch_size or width < patch_size:  # too small for one patch: contributes nothing
        return np.empty((count, 0, patch_size, patch_size, channels), images.dtype)
    windows = sliding_window_view(images, (patch_size, patch_size), axis=(1, 2))[:, ::stride, ::stride]
    patches = np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3))  # (N, rows, cols, p, p, C)
    return patches.reshape(count, -1, patch_size, patch_size, channels)


def dihedral_transform(patches: np.ndarray, index: int) -> np.ndarray:
    """Symmetry ``index`` (0-7) of square patches (..., H, W, C): rot90 by index % 4, then a
    left-right flip when index >= 4. The 8 indices are the 4 rotations and 4 reflections."""
    rotated = np.rot90(patches, index % 4, axes=(-3, -2))
    return np.flip(rotated, axis=-2) if index >= 4 else rotated


def _image_examples(
    x: tf.Tensor,
    y: tf.Tensor,
    taus: tf.Tensor,
    bit_depth: tf.Tensor,
    seed: tf.Tensor,
    patch_size: int,
    stride: int,
    chunk: int,
    augment: bool,
) -> tf.data.Dataset:
    """The T x N examples of one image in random order, as ``(x, y, tau, max_value)`` chunks of up to
    ``chunk`` examples; x, y integer (chunk, p, p, C), each example in a random symmetry (of 8;
    none when ``augment`` is False).

    Per-example rotations and flips in TF ops (transpose, reverse, select) cost several times the
    cutting itself, so the image is turned instead, once per epoch: its 4 orientations (as is,
    mirrored, transposed, transposed and mirrored) are stacked into one table of row segments
    (gcd(patch, stride) pixels long), and a patch in any of the 8 symmetries is then one
    ``tf.gather`` of contiguous segments from one orientation, its rows read top-down or
    bottom-up. x and y (plane 0 and planes 1..T of the table) are gathered with the same indices,
    so their symmetry is identical by construction. The table holds 4 (1 + T) samples per pixel
    while the image is being cut; no per-image patch stack (4x the image) is ever built.
    """
    channels = x.shape[-1]
    segment = math.gcd(patch_size, stride)  # patch corners and sides are multiples of this
    segments_per_row = patch_size // segment
    shape = tf.shape(x, out_type=tf.int64)
    rows = tf.maximum((shape[0] - patch_size) // stride + 1, 0)
    cols = tf.maximum((shape[1] - patch_size) // stride + 1, 0)
    per_tau = rows * cols
    count = per_tau * tf.size(taus, out_type=tf.int64)
    # The area the patches cover, so that mirroring maps patch corners onto multiples of stride
    # (none when no patch fits).
    height = tf.where(per_tau > 0, (rows - 1) * stride + patch_size, 0)
    width = tf.where(per_tau > 0, (cols - 1) * stride + patch_size, 0)
    planes = tf.concat([x[tf.newaxis], y], 0)[:, :height, :width]
    transposed = tf.transpose(planes, [0, 2, 1, 3])
    orientations = (planes, _mirror(planes), transposed, _mirror(transposed))
    table = tf.concat([tf.reshape(o, [-1, segment * channels]) for o in orientations], 0)
    plane_segments = height * width // segment
    peak = tf.cast(2**bit_depth - 1, tf.float32)  # max_value(bit_depth), in the graph

    order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=seed[:2])
    if augment:
        symmetry = tf.random.stateless_uniform([count], seed[2:], minval=0, maxval=8, dtype=tf.int64)
    else:
        symmetry = tf.zeros([count], tf.int64)
    # Segment indices of every example at once (vectorised; a few bytes per example and row), so
    # that each chunk costs only two gathers.
    plane, patch = order // per_tau + 1, order % per_tau
    row, col = patch // cols, patch % cols
    orientation, bottom_up = symmetry % 4, symmetry >= 4
    turned = orientation >= 2  # transposed: the patch's row and column swap roles
    mirrored = orientation % 2 == 1  # columns counted from the right (of the turned image)
    top = tf.where(turned, col, row) * stride
    # Corner column in the orientation, in strides from its left edge.
    across = tf.where(
        turned, tf.where(mirrored, rows - 1 - row, row), tf.where(mirrored, cols - 1 - col, col)
    )
    line_segments = tf.where(turned, height, width) // segment  # segments per row of the orientation
    steps = tf.range(patch_size, dtype=tf.int64)
    lines = top[:, tf.newaxis] + tf.where(bottom_up[:, tf.newaxis], patch_size - 1 - steps, steps)
    orientation_segments = (1 + tf.size(taus, out_type=tf.int64)) * plane_segments
    first = orientation * orientation_segments + across * (stride // segment)
    x_index = (
        first[:, tf.newaxis, tf.newaxis]
        + lines[:, :, tf.newaxis] * line_segments[:, tf.newaxis, tf.newaxis]
        + tf.range(segments_per_row, dtype=tf.int64)
    )  # (count, p, p / segment)
    y_offset = plane * plane_segments  # y's segments are ``plane`` planes further than x's
    example_tau = tf.gather(taus, plane - 1)

    def cut(start: tf.Tensor) -> tuple[tf.Tensor, ...]:
        # Gathers, not slices: a slice of a big tensor aliases it, which tf.data logs as an error.
        examples = tf.range(start, tf.minimum(start + chunk, count))
        x_segments = tf.gather(x_index, examples)
        y_segments = x_segments + tf.gather(y_offset, examples)[:, tf.newaxis, tf.newaxis]
        x_patches, y_patches = (
            tf.reshape(tf.gather(table, index), [-1, patch_size, patch_size, channels])
            for index in (x_segments, y_segments)
        )
        tau = tf.gather(example_tau, examples)
        return x_patches, y_patches, tau, tf.fill(tf.shape(tau), peak)

    return tf.data.Dataset.range(0, count, chunk).map(cut)


def _mirror(images: tf.Tensor) -> tf.Tensor:
    """Reverse the columns of (N, H, W, C) images. As (N * H, W, C), tf.reverse takes its
    whole-pixel copy path: ~3x faster than reversing axis 2 of the 4-D tensor."""
    shape = tf.shape(images)
    rows = tf.reshape(images, [shape[0] * shape[1], shape[2], images.shape[-1]])
    return tf.reshape(tf.reverse(rows, [1]), shape)


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
        lambda image, image_seed: _image_examples(
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
