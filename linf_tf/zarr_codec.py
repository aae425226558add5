"""The linf codec as a Zarr v3 array-to-bytes codec, named ``"linf_tf.linf"`` in ``zarr.json``.

    import zarr
    from linf_tf.zarr_codec import LinfZarrCodec
    array = zarr.create_array("volume.zarr", shape=(200, 4096, 4096), chunks=(16, 512, 512),
                              dtype="uint16", serializer=LinfZarrCodec(tau=2), compressors=None)

Zarr 3 documents custom codecs as subclasses of ``zarr.abc.codec.ArrayBytesCodec`` registered
through the ``zarr.codecs`` entry point (``setup.py`` declares it, so an installed linf-tf lets any
process open such arrays); importing this module registers the codec as well. The codec produces a
compressed stream, so pass ``compressors=None``: a general-purpose compressor after it only costs time.

Chunk axes map onto the codec's image as ``linf_tf.numcodecs_codec`` describes (``layout``):
``"slices"`` folds every leading axis into the rows, ``"channels"`` into interleaved channels.
The dtype, ``tau`` against the bit depth and the chunk shape against the codec's limits are checked
when the array is created (``evolve_from_array_spec``/``validate``), not at the first write. Inside a
sharding codec zarr only hands over the inner chunk spec to ``evolve_from_array_spec``, so the dtype
is still checked at creation, and an inner chunk over the size limits is refused at its first write.

Writes of part of a chunk make zarr decode the stored chunk, merge and re-encode it: the samples not
written are then coded twice, and their error against the original data can reach 2 * tau. Write
whole chunks (``dask.array.to_zarr`` rechunks to the Zarr chunks).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

from linf_tf import codec
from linf_tf.numcodecs_codec import LinfCodec, check_array, check_settings, image_shape

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer
    from zarr.core.chunk_grids import ChunkGrid
    from zarr.core.dtype.wrapper import TBaseDType, TBaseScalar, ZDType

CODEC_NAME = "linf_tf.linf"
CONFIG_KEYS = ("tau", "bit_depth", "threads", "layout")


@dataclass(frozen=True)
class LinfZarrCodec(ArrayBytesCodec):
    """Zarr v3 serializer: every decoded sample is within ``tau`` of the original (0 = lossless)."""

    is_fixed_size = False

    tau: int
    bit_depth: int | None = None
    threads: int = 1
    layout: str = "slices"

    def __init__(
        self, *, tau: int, bit_depth: int | None = None, threads: int = 1, layout: str = "slices"
    ) -> None:
        check_settings(tau, bit_depth, threads, layout)
        object.__setattr__(self, "tau", int(tau))
        object.__setattr__(self, "bit_depth", None if bit_depth is None else int(bit_depth))
        object.__setattr__(self, "threads", int(threads))
        object.__setattr__(self, "layout", layout)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _, configuration = parse_named_configuration(data, CODEC_NAME)
        unknown = sorted(set(configuration) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"{CODEC_NAME}: unknown configuration keys {unknown}; known: {list(CONFIG_KEYS)}"
            )
        return cls(**configuration)

    def to_dict(self) -> dict[str, Any]:
        return {"name": CODEC_NAME, "configuration": {key: getattr(self, key) for key in CONFIG_KEYS}}

    @cached_property
    def _numcodec(self) -> LinfCodec:
        return LinfCodec(tau=self.tau, bit_depth=self.bit_depth, threads=self.threads, layout=self.layout)

    # --- checks when the array is created ---------------------------------------------------------

    def evolve_from_array_spec(self, array_spec: ArraySpec) -> Self:
        check_array(array_spec.dtype.to_native_dtype(), self.tau, self.bit_depth)
        return self

    def validate(
        self, *, shape: tuple[int, ...], dtype: ZDType[TBaseDType, TBaseScalar], chunk_grid: ChunkGrid
    ) -> None:
        check_array(dtype.to_native_dtype(), self.tau, self.bit_depth)
        if isinstance(chunk_grid, RegularChunkGrid):
            image_shape(tuple(chunk_grid.chunk_shape), self.layout)

    # --- coding ---------------------------------------------------------------------------------

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        chunk = np.ascontiguousarray(chunk_array.as_numpy_array())
        stream = await asyncio.to_thread(self._numcodec.encode, chunk)  # the C core releases the GIL
        return chunk_spec.prototype.buffer.from_bytes(stream)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        decoded = await asyncio.to_thread(self._decode, chunk_bytes.as_numpy_array(), chunk_spec)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(decoded)

    def _decode(self, data: np.ndarray, chunk_spec: ArraySpec) -> np.ndarray:
        dtype = chunk_spec.dtype.to_native_dtype()
        stream = codec.info(data)
        expected = image_shape(tuple(chunk_spec.shape), self.layout)
        if stream.shape != expected or stream.dtype != dtype.newbyteorder("="):
            raise ValueError(
                f"{CODEC_NAME}: the stored chunk is a {stream.dtype} image of shape {stream.shape}, but the "
                f"array's {dtype} chunks of shape {tuple(chunk_spec.shape)} are coded as {expected}"
            )
        decoded = self._numcodec.decode(data)
        return decoded.reshape(chunk_spec.shape).astype(dtype, copy=False)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError  # variable-size output

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={getattr(self, key)!r}" for key in CONFIG_KEYS)
        return f"LinfZarrCodec({settings})"


register_codec(CODEC_NAME, LinfZarrCodec)
