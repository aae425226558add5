"""Training input pipeline (linf_tf.learn.data): codec round trip, patches, augmentation, cache, sharding.

The sources alone are tested in test_sources.py, the patch reference functions in test_patches.py.

Tiny crops of skimage.data images keep every test fast; the codec is the real C codec.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from linf_tf import codec
from linf_tf.image_samples import ImageData
from linf_tf.learn import data
from linf_tf.learn.patches import count_patches, dihedral_transform, extract_patches
from linf_tf.pixels import convert_channels

TOLERANCE = 1e-6  # float32 rounding of values divided by 255
PATCH, STRIDE = 64, 32


def rgb_crop(height: int = 128, width: int = 160) -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[100 : 100 + height, 150 : 150 + width])


def gray_crop(height: int = 96, width: int = 128) -> np.ndarray:
    return np.ascontiguousarray(skimage.data.camera()[200 : 200 + height, 200 : 200 + width])


def collect(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All batches of one epoch concatenated: x, y, tau as numpy arrays."""
    xs, ys, taus = zip(*((x.numpy(), y.numpy(), t.numpy()) for x, y, t in dataset), strict=True)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(taus)


def to_ints(values: np.ndarray, peak: int = 255) -> np.ndarray:
    return np.rint(values * peak).astype(np.int64)


def training(images, **overrides) -> tf.data.Dataset:
    arguments = {"taus": (6, 10), "batch_size": 4, "seed": 0, "cache": None, "channels": 3}
    arguments.update(overrides)
    return data.make_training_dataset(images, **arguments)


# --- sources -------------------------------------------------------------------------------------


def test_files_are_read_like_arrays(tmp_path):
    path = tmp_path / "crop.png"
    image = rgb_crop(64, 96)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    from_file = collect(training([path], augment=False, interleave_images=1, image_shuffle_buffer=1))
    from_array = collect(training([image], augment=False, interleave_images=1, image_shuffle_buffer=1))
    for file_values, array_values in zip(from_file, from_array, strict=True):
        np.testing.assert_array_equal(file_values, array_values)


def test_a_dataset_of_image_tensors_is_a_source():
    images = [rgb_crop(128, 160), rgb_crop(96, 96)]
    source = tf.data.Dataset.from_tensors(images[0]).concatenate(tf.data.Dataset.from_tensors(images[1]))
    from_dataset = collect(training(source, augment=False, interleave_images=1, image_shuffle_buffer=1))
    from_list = collect(training(images, augment=False, interleave_images=1, image_shuffle_buffer=1))
    for dataset_values, list_values in zip(from_dataset, from_list, strict=True):
        np.testing.assert_array_equal(dataset_values, list_values)


# --- codec round trip ---------------------------------------------------------------------------


def test_cache_holds_uint8_for_8_bit_sources_and_uint16_otherwise():
    eight = data.compressed_images([rgb_crop(), gray_crop()], (6, 10), 3)
    assert [spec.dtype for spec in eight.element_spec[:2]] == [tf.uint8, tf.uint8]
    x, y, taus, depth = next(iter(eight))
    assert y.shape == (2, *x.shape) and taus.numpy().tolist() == [6, 10] and int(depth) == 8
    twelve = ImageData(pixels=gray_crop().astype(np.uint16) * 16 + 5, bit_depth=12)
    mixed = data.compressed_images([twelve, rgb_crop()], (6,), 1)
    assert [spec.dtype for spec in mixed.element_spec[:2]] == [tf.uint16, tf.uint16]
    assert [int(depth) for _, _, _, depth in mixed] == [12, 8]


def test_mixed_bit_depths_are_each_scaled_by_their_max_value():
    twelve = ImageData(pixels=gray_crop().astype(np.uint16) * 16 + 5, bit_depth=12)
    x, y, tau = collect(training([twelve, gray_crop()], taus=(6,), channels=1, augment=False))
    scaled_tau = np.unique(tau)
    np.testing.assert_allclose(np.sort(scaled_tau), [6 / 4095, 6 / 255], rtol=1e-6)
    for value, peak in ((6 / 4095, 4095), (6 / 255, 255)):
        mine = np.isclose(tau, value)
        assert mine.sum() == count_patches(96, 128, PATCH, STRIDE)
        np.testing.assert_array_equal(x[mine], to_ints(x[mine], peak).astype(np.float32) / np.float32(peak))
        assert np.all(np.abs(x[mine] - y[mine]).max(axis=(1, 2, 3)) <= value + TOLERANCE)


@pytest.mark.parametrize("tau", [0, 6, 14])
def test_compress_roundtrip_is_within_tau(tau):
    image = rgb_crop()
    decoded = data.compress_roundtrip(image, tau)
    assert decoded.shape == image.shape and decoded.dtype == image.dtype
    assert np.abs(decoded.astype(int) - image.astype(int)).max() <= tau
    if tau > 0:
        assert not np.array_equal(decoded, image)


def test_compress_roundtrip_12_bit():
    image = (gray_crop().astype(np.uint16) * 16) + 3  # 12-bit samples
    decoded = data.compress_roundtrip(image, 40, bit_depth=12)
    assert decoded.dtype == np.uint16 and decoded.max() < 4096
    assert np.abs(decoded.astype(int) - image.astype(int)).max() <= 40


# --- training dataset ----------------------------------------------------------------------------


def test_patch_shapes_counts_and_dtypes():
    images = [rgb_crop(128, 160), rgb_crop(96, 96)]
    per_tau = count_patches(128, 160, PATCH, STRIDE) + count_patches(96, 96, PATCH, STRIDE)
    x, y, tau = collect(training(images, taus=(6, 10), batch_size=1))
    assert x.shape == y.shape == (2 * per_tau, PATCH, PATCH, 3)
    assert tau.shape == (2 * per_tau,)
    assert x.dtype == y.dtype == tau.dtype == np.float32
    assert Counter(to_ints(tau).tolist()) == {6: per_tau, 10: per_tau}


def test_batches_drop_the_remainder():
    per_tau = count_patches(128, 160, PATCH, STRIDE)  # 12 patches, x2 taus = 24
    batches = [x.shape[0] for x, _, _ in training([rgb_crop()], batch_size=5)]
    assert batches == [5] * (2 * per_tau // 5)


@pytest.mark.parametrize("patch,stride", [(PATCH, STRIDE), (48, 20), (32, 48)])
def test_without_augmentation_every_patch_comes_exactly_once_per_tau(patch, stride):
    """The gathered patches are exactly numpy's sliding windows: each (x, y, tau) once, nothing else,
    including odd sizes, strides that do not divide the patch, and an image too small for a patch."""
    images, taus = [rgb_crop(128, 160), rgb_crop(100, 130), rgb_crop(40, 200)], (6, 12)
    expected = Counter()
    for image in images:
        decoded = np.stack([data.compress_roundtrip(image, tau) for tau in taus])
        cut = extract_patches(np.concatenate([image[None], decoded]), patch, stride)
        for t, tau in enumerate(taus):
            expected.update((cut[0, i].tobytes(), cut[1 + t, i].tobytes(), tau) for i in range(cut.shape[1]))
    arrays = training(images, taus=taus, batch_size=1, patch_size=patch, stride=stride, augment=False)
    x, y, tau = (to_ints(a) for a in collect(arrays))
    got = Counter(
        (x[i].astype(np.uint8).tobytes(), y[i].astype(np.uint8).tobytes(), tau[i]) for i in range(len(x))
    )
    assert got == expected


def test_augmentation_uses_all_eight_symmetries():
    image = rgb_crop(256, 256)
    patches = extract_patches(image[None], PATCH, STRIDE)[0]
    symmetry_of = {dihedral_transform(p, k).tobytes(): k for p in patches for k in range(8)}
    x, _, _ = collect(training([image], taus=(6,), batch_size=7, seed=1))
    used = Counter(symmetry_of[to_ints(patch).astype(np.uint8).tobytes()] for patch in x)
    assert sum(used.values()) == len(x) and set(used) == set(range(8))


def test_batches_mix_several_images():
    images = constant_images(4)
    x, _, _ = collect(training(images, taus=(6,), batch_size=8, interleave_images=4, cache=None))
    per_batch = [len(np.unique(to_ints(x[i : i + 8]))) for i in range(0, len(x), 8)]
    assert np.mean(per_batch) >= 2.5  # one image per batch would be 1


def test_values_in_unit_range_and_within_tau_for_every_tau():
    taus = data.DEFAULT_TAUS
    x, y, tau = collect(training([rgb_crop(), gray_crop()], taus=taus, batch_size=8))
    assert 0.0 <= x.min() and x.max() <= 1.0 and 0.0 <= y.min() and y.max() <= 1.0
    np.testing.assert_allclose(np.unique(tau), np.array(taus) / 255.0, rtol=1e-6)
    error = np.abs(x - y).max(axis=(1, 2, 3))
    assert np.all(error <= tau + TOLERANCE)
    for value in taus:  # the codec actually uses its budget: y is not just x
        assert error[to_ints(tau) == value].max() >= (value - 1) / 255.0
    np.testing.assert_array_equal(x, to_ints(x).astype(np.float32) / np.float32(255))  # exactly k/255


def test_augmentation_is_a_symmetry_applied_to_x_and_y_alike():
    image = rgb_crop()
    taus = (6, 12)
    # Every (original patch, decoded patch, tau) the pipeline can emit before augmentation.
    decoded = np.stack([data.compress_roundtrip(image, tau) for tau in taus])
    patches = extract_patches(np.concatenate([image[None], decoded]), PATCH, STRIDE)
    allowed = {
        (patches[0, i].tobytes(), patches[1 + t, i].tobytes(), tau)
        for t, tau in enumerate(taus)
        for i in range(patches.shape[1])
    }
    x, y, tau = collect(training([image], taus=taus, batch_size=4, seed=3))
    x, y, tau = to_ints(x).astype(np.uint8), to_ints(y).astype(np.uint8), to_ints(tau)
    untransformed = 0
    for i in range(len(x)):
        # The inverse of a symmetry is a symmetry: some index maps the example back.
        undone = [(dihedral_transform(x[i], k), dihedral_transform(y[i], k)) for k in range(8)]
        matches = [k for k, (a, b) in enumerate(undone) if (a.tobytes(), b.tobytes(), tau[i]) in allowed]
        assert matches, f"example {i} is not a symmetry of any (x, y) patch pair"
        untransformed += 0 in matches
        assert np.abs(x[i].astype(int) - y[i].astype(int)).max() <= tau[i]
    assert untransformed < len(x)  # augmentation did something


def test_same_seed_same_batches_new_epoch_new_order():
    images = [rgb_crop(), gray_crop()]
    first = training(images, seed=7, cache="")
    again = training(images, seed=7, cache="")
    other = training(images, seed=8, cache="")
    epoch_one = collect(first)
    for mine, theirs in zip(epoch_one, collect(again), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert not np.array_equal(epoch_one[0], collect(other)[0])
    epoch_two = collect(first)
    assert not np.array_equal(epoch_one[0], epoch_two[0])  # reshuffled and re-augmented


def count_codec_calls(monkeypatch) -> Counter:
    calls: Counter = Counter()
    real_encode = codec.encode_with_decoded

    def counting_encode(*args, **kwargs):
        calls["encode"] += 1
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(data.codec, "encode_with_decoded", counting_encode)
    return calls


def patch_multiset(arrays: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Counter:
    """Patches as a multiset, with augmentation undone by taking the smallest of the 8 symmetries."""
    x, y, tau = (to_ints(a) for a in arrays)
    canonical = Counter()
    for i in range(len(x)):
        pair = np.concatenate([x[i], y[i]], axis=2)
        canonical[(min(dihedral_transform(pair, k).tobytes() for k in range(8)), tau[i])] += 1
    return canonical


@pytest.mark.parametrize("cache", ["", "file"])
def test_cache_skips_the_codec_on_later_epochs(monkeypatch, tmp_path, cache):
    calls = count_codec_calls(monkeypatch)
    cache = str(tmp_path / "decoded") if cache == "file" else cache
    images, taus = [rgb_crop(), gray_crop()], (6, 10)
    dataset = training(images, taus=taus, batch_size=1, cache=cache)
    epoch_one = collect(dataset)
    assert calls["encode"] == len(images) * len(taus)
    epoch_two = collect(dataset)
    assert calls["encode"] == len(images) * len(taus)  # no re-encoding
    assert patch_multiset(epoch_one) == patch_multiset(epoch_two)
    if cache:
        assert list(tmp_path.glob("decoded*"))


def test_without_cache_every_epoch_reencodes(monkeypatch):
    calls = count_codec_calls(monkeypatch)
    dataset = training([rgb_crop()], taus=(6, 10), cache=None)
    collect(dataset)
    collect(dataset)
    assert calls["encode"] == 2 * 2


def constant_images(count: int) -> list[np.ndarray]:
    """Images told apart by their (constant) value: 20, 40, ..."""
    return [np.full((64, 96, 3), 20 * (index + 1), np.uint8) for index in range(count)]


def test_sharding_splits_images_disjointly():
    images = constant_images(5)
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2
        )
        dataset = training(images, taus=(6,), batch_size=4, input_context=context)
        batch_sizes = {x.shape[0] for x, _, _ in dataset}
        assert batch_sizes == {2}  # global batch 4 over 2 replicas
        x, _, _ = collect(dataset)
        seen.append(set(np.unique(to_ints(x)).tolist()))
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == {20, 40, 60, 80, 100}
    assert len(seen[0]) == 3 and len(seen[1]) == 2


def test_works_with_distribute_datasets_from_function():
    strategy = tf.distribute.get_strategy()  # default strategy: one replica, one input pipeline
    distributed = strategy.distribute_datasets_from_function(
        lambda context: data.make_training_dataset(
            [rgb_crop()], taus=(6,), batch_size=4, cache=None, input_context=context
        )
    )
    x, y, tau = next(iter(distributed))
    assert x.shape == y.shape == (4, PATCH, PATCH, 3) and tau.shape == (4,)


@pytest.mark.parametrize("channels", [1, 3])
def test_gray_and_rgb_sources_are_unified(channels):
    x, y, _ = collect(training([rgb_crop(), gray_crop()], taus=(6,), channels=channels))
    assert x.shape[-1] == y.shape[-1] == channels


def test_high_bit_depth_is_scaled_by_its_max_value():
    pixels = gray_crop().astype(np.uint16) * 16 + 5  # 12-bit samples
    image = ImageData(pixels=pixels, bit_depth=12)
    x, y, tau = collect(training([image], taus=(40,), channels=1))
    assert data.max_value(12) == 4095
    np.testing.assert_allclose(tau, 40 / 4095, rtol=1e-6)
    assert x.max() <= 1.0 and x.max() > 0.5
    assert np.all(np.abs(x - y).max(axis=(1, 2, 3)) <= tau + TOLERANCE)
    assert set(np.unique(to_ints(x, 4095) % 16).tolist()) == {5}  # values k/4095, not k/255


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="taus"):
        training([rgb_crop()], taus=())
    with pytest.raises(ValueError, match="no training images"):
        training([])
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        training([rgb_crop()], channels=4)
    with pytest.raises(ValueError, match="stride must be a positive int"):
        training([rgb_crop()], stride=0)
    with pytest.raises(ValueError, match="crop_size must be a positive int"):
        data.make_validation_dataset([rgb_crop()], crop_size=0)


# --- validation dataset --------------------------------------------------------------------------


def test_validation_whole_images_and_crops():
    images = [rgb_crop(128, 160), gray_crop(96, 128)]
    taus = (6, 12)
    whole = list(data.make_validation_dataset(images, taus=taus))
    assert [tuple(x.shape) for x, _, _ in whole] == [(1, 128, 160, 3)] * 2 + [(1, 96, 128, 3)] * 2
    assert [round(float(t[0]) * 255) for _, _, t in whole] == [6, 12, 6, 12]
    for x, y, tau in whole:
        assert y.shape == x.shape and tau.shape == (1,)
        assert float(tf.reduce_max(tf.abs(x - y))) <= float(tau[0]) + TOLERANCE
    cropped = list(data.make_validation_dataset(images, taus=(6,), crop_size=100, channels=1))
    assert [tuple(x.shape) for x, _, _ in cropped] == [(1, 100, 100, 1), (1, 96, 100, 1)]
    centre = convert_channels(images[0], 1)[14:114, 30:130, 0]
    np.testing.assert_array_equal(to_ints(cropped[0][0].numpy()[0, :, :, 0]), centre)


# --- slow ----------------------------------------------------------------------------------------

EPOCH_DIGEST_SCRIPT = """
import hashlib, skimage.data
from linf_tf.learn import data
images = [skimage.data.astronaut()[:128, :160], skimage.data.camera()[:96, :128]]
dataset = data.make_training_dataset(images, taus=(6, 10), batch_size=4, seed=3, cache="")
digest = hashlib.sha256()
for _ in range(2):
    for batch in dataset:
        for tensor in batch:
            digest.update(tensor.numpy().tobytes())
print(digest.hexdigest())
"""


@pytest.mark.slow
def test_same_seed_same_epochs_across_processes():
    digests = {
        subprocess.run(
            [sys.executable, "-c", EPOCH_DIGEST_SCRIPT], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(3)
    }
    assert len(digests) == 1
