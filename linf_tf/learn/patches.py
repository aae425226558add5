"""Cutting patches from whole images, in one of the 8 symmetries each, with ``tf.gather``.

The training pipeline (:func:`linf_tf.learn.data.make_training_dataset`) calls
:func:`image_examples` once per image and epoch; the NumPy functions here are its reference
(``extract_patches``, ``dihedral_transform``) and its patch count.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view


def count_patches(height: int, width: int, patch_size: int, stride: int) -> int:
    """Number of patch_size x patch_size patches, stride apart, that fit inside HxW (VALID)."""
    rows = (height - patch_size) // stride + 1 if height >= patch_size else 0
    cols = (width - patch_size) // stride + 1 if width >= patch_size else 0
    return rows * cols


def extract_patches(images: np.ndarray, patch_size: int, stride: int) -> np.ndarray:
    """(N, H, W, C) -> (N, P, p, p, C): every p x p window ``stride`` apart (VALID), row-major.

    Same result as ``tf.image.extract_patches`` reshaped. A numpy reference for the patches that
    the training pipeline cuts (by ``tf.gather``, see ``image_examples``).
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


def image_examples(
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
