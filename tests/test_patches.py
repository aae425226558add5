"""The NumPy reference of the patch cutting (linf_tf.learn.patches): windows, counts, symmetries."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from linf_tf.learn.patches import count_patches, dihedral_transform, extract_patches

PATCH, STRIDE = 64, 32


@pytest.mark.parametrize("height,width", [(128, 160), (64, 64), (100, 130), (63, 200)])
def test_extract_patches_matches_tf(height, width):
    images = np.random.default_rng(0).integers(0, 4096, (2, height, width, 3)).astype(np.int32)
    expected = tf.image.extract_patches(
        images, [1, PATCH, PATCH, 1], [1, STRIDE, STRIDE, 1], [1, 1, 1, 1], "VALID"
    ).numpy()
    expected = expected.reshape(2, -1, PATCH, PATCH, 3)
    patches = extract_patches(images, PATCH, STRIDE)
    np.testing.assert_array_equal(patches, expected)
    assert patches.shape[1] == count_patches(height, width, PATCH, STRIDE)


def test_count_patches():
    assert count_patches(128, 160, 64, 32) == 3 * 4
    assert count_patches(64, 64, 64, 32) == 1
    assert count_patches(63, 500, 64, 32) == 0
    assert count_patches(2040, 1356, 64, 32) == 62 * 41


def test_dihedral_transforms_are_the_eight_symmetries():
    patch = np.arange(4 * 4 * 2).reshape(4, 4, 2)
    results = [dihedral_transform(patch, index) for index in range(8)]
    assert len({result.tobytes() for result in results}) == 8
    np.testing.assert_array_equal(results[0], patch)
    np.testing.assert_array_equal(results[1], np.rot90(patch))
    np.testing.assert_array_equal(results[4], patch[:, ::-1])
