"""Write a uint16 volume to a Zarr v3 store with the linf codec through Dask, read it back, check the bound.

    python examples/zarr_dask.py volume.zarr                         # dask.distributed LocalCluster
    python examples/zarr_dask.py volume.zarr --scheduler threads     # Dask's local threaded scheduler
    python examples/zarr_dask.py volume.zarr --input stack.tif --chunks 8,256,256

Without ``--input`` the volume is synthetic (smooth structure plus noise), generated chunk by chunk
so it never has to fit in memory; with it, a TIFF stack (read with tifffile, Z/C leading) is used.
The Zarr chunks are the Dask chunks. Every chunk is written whole, coded with ``LinfZarrCodec``
(no extra compressor), then the store is read back with ``dask.array.from_zarr`` and the largest
|decoded - original| of every chunk is computed on the workers; the script fails if any exceeds tau.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import zarr

from linf_tf.zarr_codec import LinfZarrCodec


def synthetic_chunk(chunk: np.ndarray, block_info: dict | None = None) -> np.ndarray:
    """Deterministic microscopy-like samples for the chunk at ``block_info``'s location."""
    location = block_info[None]["array-location"]
    grids = np.meshgrid(
        *(np.arange(start, stop, dtype=np.float64) for start, stop in location), indexing="ij"
    )
    z, y, x = grids[-3] if len(grids) > 2 else 0.0, grids[-2], grids[-1]
    signal = 1200 + 900 * np.sin(x / 37.0) * np.cos(y / 53.0) + 300 * np.sin(z / 5.0)
    rng = np.random.default_rng([start for start, _ in location])
    return np.clip(rng.poisson(np.maximum(signal, 0)), 0, 65535).astype(np.uint16)


def load_volume(args: argparse.Namespace) -> da.Array:
    if args.input is None:
        return da.zeros(args.shape, chunks=args.chunks, dtype=np.uint16).map_blocks(
            synthetic_chunk, dtype=np.uint16
        )
    import tifffile

    pixels = tifffile.imread(args.input)
    if pixels.dtype != np.uint16:
        raise SystemExit(f"zarr_dask: {args.input} holds {pixels.dtype} samples; this example writes uint16")
    return da.from_array(pixels, chunks=args.chunks[-pixels.ndim :])


def chunk_max_errors(original: da.Array, decoded: da.Array) -> np.ndarray:
    """The largest |decoded - original| of every chunk, one value per chunk, computed lazily."""
    difference = abs(decoded.astype(np.int32) - original.astype(np.int32))
    keepdims = tuple(1 for _ in range(original.ndim))
    per_chunk = difference.map_blocks(lambda block: block.max(keepdims=True), chunks=keepdims, dtype=np.int32)
    return per_chunk.compute()


def scheduler(args: argparse.Namespace) -> AbstractContextManager:
    if args.scheduler == "threads":
        return dask.config.set(scheduler="threads")
    return local_cluster(args.workers)


@contextmanager
def local_cluster(workers: int) -> Iterator[None]:
    """A dask.distributed cluster of ``workers`` single-threaded processes on this machine."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True) as cluster, Client(cluster):
        yield


def stored_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file() and item.name != "zarr.json")


def run(args: argparse.Namespace) -> int:
    volume = load_volume(args)
    with scheduler(args):
        # The Zarr array is created (and the codec checks dtype and chunk shape) before any chunk is coded.
        volume.to_zarr(str(args.store), serializer=LinfZarrCodec(tau=args.tau), compressors=None, mode="w")
        decoded = da.from_zarr(str(args.store))
        errors = chunk_max_errors(volume, decoded)
    array = zarr.open_array(str(args.store), mode="r")
    bits = 8.0 * stored_bytes(args.store) / volume.size
    print(f"{args.store}: shape {array.shape}, chunks {array.chunks}, {errors.size} chunks")
    print(f"codec {array.serializer}")
    print(
        f"{bits:.3f} bits per sample ({volume.nbytes / 1e6:.1f} MB raw); "
        f"max |error| {errors.max()} over all chunks (tau {args.tau})"
    )
    if errors.max() > args.tau:
        print(f"zarr_dask: error: {int((errors > args.tau).sum())} chunk(s) exceed tau", file=sys.stderr)
        return 1
    return 0


def parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path, help="Zarr store to write (a folder; replaced if it exists)")
    parser.add_argument("--tau", type=int, default=2, help="error bound (default 2; 0 = lossless)")
    parser.add_argument("--shape", type=parse_shape, default=(32, 1024, 1024), help="synthetic volume Z,Y,X")
    parser.add_argument("--chunks", type=parse_shape, default=(8, 256, 256), help="Zarr/Dask chunk Z,Y,X")
    parser.add_argument(
        "--input", type=Path, default=None, help="a uint16 TIFF stack instead of synthetic data"
    )
    parser.add_argument(
        "--scheduler",
        choices=("distributed", "threads"),
        default="distributed",
        help="dask.distributed LocalCluster (default) or Dask's local threaded scheduler",
    )
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
