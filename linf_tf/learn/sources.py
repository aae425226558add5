"""Where training and validation images come from, and their loading into ``tf.data``.

Sources: a sequence whose items are file paths, ``ImageData`` or uint8/uint16 arrays (HxW or
HxWxC), or a ``tf.data.Dataset`` of uint8/uint16 image tensors (e.g. ``div2k_source``). Sequence
items are loaded inside ``tf.numpy_function`` by index, so a dataset built from a sequence cannot be
serialized (no tf.data service, no saving of the graph); it runs in-process. Images are sharded
between input pipelines before they are read, and converted to the requested channel count
(see :func:`linf_tf.pixels.convert_channels`) so that every image of a run can share a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import skimage.data
import tensorflow as tf
import tifffile

from linf_tf.image_samples import ImageData
from linf_tf.imageio import list_images, read_image
from linf_tf.pixels import convert_channels

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
