"""The linf codec in array stores: the numcodecs codec and its registry entry, the Zarr v3 codec
(errors at array creation, bound on every chunk, lossless tau 0), writing through Dask, and the
entry points declared in setup.py."""

from __future__ import annotations

import configparser
import csv
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data

numcodecs = pytest.importorskip("numcodecs")
zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from linf_tf import codec, numcodecs_codec  # noqa: E402
from linf_tf.numcodecs_codec import LinfCodec  # noqa: E402
from linf_tf.zarr_codec import CODEC_NAME, LinfZarrCodec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def max_error(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


def microscopy_stack(slices: int = 5, height: int = 70, width: int = 100, seed: int = 0) -> np.ndarray:
    """A uint16 (Z, Y, X) stack: a real 8-bit photo scaled to 12 bits, shifted per slice, plus noise."""
    photo = skimage.data.camera()[:height, : width + slices].astype(np.int32) * 16
    rng = np.random.default_rng(seed)
    stack = np.stack([photo[:, z : z + width] for z in range(slices)]) + rng.integers(
        0, 40, (slices, height, width)
    )
    return stack.astype(np.uint16)


# ------------------------------------------------------------------ numcodecs codec


@pytest.mark.parametrize("layout", ["slices", "channels"])
@pytest.mark.parametrize("tau", [0, 3])
def test_numcodecs_round_trip_keeps_the_bound(layout: str, tau: int) -> None:
    stack = microscopy_stack()
    linf = LinfCodec(tau=tau, layout=layout)
    decoded = linf.decode(linf.encode(stack))
    assert decoded.dtype == np.uint16 and decoded.size == stack.size
    restored = decoded.reshape(stack.shape)
    assert max_error(restored, stack) <= tau
    if tau == 0:
        np.testing.assert_array_equal(restored, stack)


def test_layouts_map_chunk_axes_as_documented() -> None:
    stack = microscopy_stack(slices=3)
    slices = codec.info(LinfCodec(tau=1).encode(stack))
    assert (slices.height, slices.width, slices.channels) == (3 * 70, 100, 1)
    channels = codec.info(LinfCodec(tau=1, layout="channels").encode(stack))
    assert (channels.height, channels.width, channels.channels) == (70, 100, 3)
    four_d = stack.reshape(3, 1, 70, 100)  # leading axes fold together
    assert codec.info(LinfCodec(tau=1, layout="channels").encode(four_d)).channels == 3
    row = codec.info(LinfCodec(tau=1).encode(stack[0, 0]))
    assert (row.height, row.width) == (1, 100)


def test_uint8_gray_and_decode_into_out() -> None:
    image = skimage.data.camera()[:64, :80]
    linf = LinfCodec(tau=2)
    out = np.zeros_like(image)
    linf.decode(linf.encode(image), out=out)
    assert max_error(out, image) <= 2
    with pytest.raises(ValueError, match="output buffer"):
        linf.decode(linf.encode(image), out=np.zeros(10, np.uint8))


def test_fortran_ordered_chunk_round_trips_in_memory_order() -> None:
    stack = np.asfortranarray(microscopy_stack(slices=2))
    linf = LinfCodec(tau=0)
    decoded = linf.decode(linf.encode(stack))
    restored = decoded.reshape(-1).reshape(stack.shape, order="F")  # what Zarr v2 does for order="F"
    np.testing.assert_array_equal(restored, stack)


def test_registry_lookup_of_linf() -> None:
    """Fails if numcodecs' registry cannot be imported (the zfpy 1.0.1.post0 trap) or loses "linf"."""
    codec_from_registry = numcodecs.get_codec({"id": "linf", "tau": 2, "layout": "channels"})
    assert isinstance(codec_from_registry, LinfCodec)
    assert codec_from_registry.get_config() == {
        "id": "linf",
        "tau": 2,
        "bit_depth": None,
        "threads": 1,
        "layout": "channels",
    }
    stack = microscopy_stack(slices=2)
    restored = codec_from_registry.decode(codec_from_registry.encode(stack)).reshape(stack.shape)
    assert max_error(restored, stack) <= 2
    assert numcodecs.get_codec(codec_from_registry.get_config()) == codec_from_registry


def test_threads_are_passed_only_to_a_codec_that_takes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    image = skimage.data.camera()[:32, :32]
    seen: dict[str, object] = {}
    real_encode = codec.encode

    def encode_with_threads(
        pixels: np.ndarray, tau: int, bit_depth: int | None = None, threads: int = 1
    ) -> bytes:
        seen["threads"] = threads
        return real_encode(pixels, tau, bit_depth=bit_depth)

    monkeypatch.setattr(numcodecs_codec.codec, "encode", encode_with_threads)
    monkeypatch.setattr(
        numcodecs_codec, "_ENCODE_TAKES_THREADS", numcodecs_codec._accepts_threads(encode_with_threads)
    )
    LinfCodec(tau=1, threads=3).encode(image)
    assert seen == {"threads": 3}
    monkeypatch.setattr(numcodecs_codec, "_ENCODE_TAKES_THREADS", False)
    seen.clear()
    LinfCodec(tau=1, threads=3).encode(image)
    assert seen == {"threads": 1}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tau": -1}, "tau must be a non-negative int"),
        ({"tau": True}, "tau must be a non-negative int"),
        ({"tau": 1, "bit_depth": 17}, "bit_depth must be 1 to 16"),
        ({"tau": 8, "bit_depth": 4}, "tau must be at most 7 for bit depth 4"),
        ({"tau": 1, "threads": 0}, "threads must be a positive int"),
        ({"tau": 1, "layout": "tiles"}, "layout must be one of"),
    ],
)
def test_bad_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LinfCodec(**settings)
    with pytest.raises(ValueError, match=message):
        LinfZarrCodec(**settings)


def test_bad_input_is_refused_with_a_clear_error() -> None:
    linf = LinfCodec(tau=1)
    with pytest.raises(TypeError, match="uint8 and uint16"):
        linf.encode(np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="not its bytes"):
        linf.encode(np.zeros((4, 4), np.uint16).tobytes())
    with pytest.raises(ValueError, match="0-d"):
        linf.encode(np.uint16(3))
    with pytest.raises(ValueError, match="256"):
        LinfCodec(tau=1, layout="channels").encode(np.zeros((300, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="bit_depth 12 does not fit"):
        LinfCodec(tau=1, bit_depth=12).encode(np.zeros((4, 4), np.uint8))
    with pytest.raises(codec.CodecError):
        linf.decode(b"not a linf stream")


# ------------------------------------------------------------------ Zarr v3 codec


def create_array(
    path: Path, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: str, **codec_settings: object
):
    return zarr.create_array(
        str(path),
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        serializer=LinfZarrCodec(**{"tau": 2, **codec_settings}),
        compressors=None,
    )


@pytest.mark.parametrize("dtype", ["float32", "int16", "uint32", "int8", "bool"])
def test_unsupported_dtype_fails_at_array_creation(tmp_path: Path, dtype: str) -> None:
    with pytest.raises(TypeError, match="uint8 and uint16"):
        create_array(tmp_path / "a.zarr", (8, 8), (4, 4), dtype)
    assert not (tmp_path / "a.zarr" / "zarr.json").exists()


def test_unsupported_dtype_fails_at_creation_inside_a_shard(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="uint8 and uint16"):
        zarr.create_array(
            str(tmp_path / "s.zarr"),
            shape=(8, 8),
            chunks=(4, 4),
            shards=(8, 8),
            dtype="float32",
            serializer=LinfZarrCodec(tau=1),
            compressors=None,
        )


def test_settings_that_do_not_fit_the_array_fail_at_creation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tau must be at most 127 for bit depth 8"):
        create_array(tmp_path / "a.zarr", (8, 8), (4, 4), "uint8", tau=200)
    with pytest.raises(ValueError, match="256"):
        create_array(tmp_path / "b.zarr", (300, 8, 8), (300, 8, 8), "uint16", layout="channels")
    with pytest.raises(ValueError, match="rows or columns"):
        create_array(tmp_path / "c.zarr", (2, 1 << 21), (1, 1 << 21), "uint8")


def test_zarr_metadata_names_the_codec_and_reopens(tmp_path: Path) -> None:
    stack = microscopy_stack()
    array = create_array(tmp_path / "a.zarr", stack.shape, (2, 32, 48), "uint16", tau=1, layout="channels")
    array[:] = stack
    metadata = json.loads((tmp_path / "a.zarr" / "zarr.json").read_text())
    assert metadata["codecs"] == [
        {
            "name": CODEC_NAME,
            "configuration": {"tau": 1, "bit_depth": None, "threads": 1, "layout": "channels"},
        }
    ]
    reopened = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    assert reopened.serializer == LinfZarrCodec(tau=1, layout="channels")
    assert max_error(reopened[:], stack) <= 1


def test_zarr_channels_layout_with_one_leading_sample_is_gray(tmp_path: Path) -> None:
    stack = microscopy_stack(slices=3)
    array = create_array(tmp_path / "a.zarr", stack.shape, (1, 40, 64), "uint16", tau=2, layout="channels")
    array[:] = stack
    assert max_error(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[:], stack) <= 2


def test_zarr_tau_zero_is_bit_exact(tmp_path: Path) -> None:
    stack = microscopy_stack()
    array = create_array(tmp_path / "a.zarr", stack.shape, (3, 40, 64), "uint16", tau=0)
    array[:] = stack
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[:], stack)


def test_dask_to_zarr_multichunk_bound_on_every_chunk(tmp_path: Path) -> None:
    tau, chunks = 3, (2, 32, 48)
    stack = microscopy_stack(slices=5, height=70, width=100)  # edge chunks are partial on every axis
    store = tmp_path / "stack.zarr"
    with dask.config.set(scheduler="threads", num_workers=2):
        da.from_array(stack, chunks=chunks).to_zarr(
            str(store), serializer=LinfZarrCodec(tau=tau), compressors=None
        )
    array = zarr.open_array(str(store), mode="r")
    assert array.chunks == chunks and array.nchunks == 3 * 3 * 3
    for index in np.ndindex(*array.cdata_shape):
        region = tuple(
            slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(index, chunks, stack.shape, strict=True)
        )
        assert max_error(array[region], stack[region]) <= tau, f"chunk {index}"
        stream = codec.info((store / "c" / "/".join(map(str, index))).read_bytes())  # a real linf stream
        assert (stream.tau, stream.height, stream.width) == (tau, chunks[0] * chunks[1], chunks[2])
    assert max_error(array[:], stack) > 0  # lossy at tau 3: the codec really ran


def test_stored_chunk_of_another_shape_is_an_error_not_garbage(tmp_path: Path) -> None:
    array = create_array(tmp_path / "a.zarr", (2, 8, 8), (2, 8, 8), "uint8")
    array[:] = 7
    foreign = codec.encode(np.full((4, 32), 7, np.uint8), 2)  # same sample count, wrong image shape
    (tmp_path / "a.zarr" / "c" / "0" / "0" / "0").write_bytes(foreign)
    with pytest.raises(ValueError, match=r"shape \(4, 32\).*coded as \(16, 8\)"):
        zarr.open_array(str(tmp_path / "a.zarr"), mode="r")[:]


def test_zarr_format_2_takes_the_numcodecs_codec(tmp_path: Path) -> None:
    stack = microscopy_stack(slices=2)
    array = zarr.create_array(
        str(tmp_path / "v2.zarr"),
        shape=stack.shape,
        chunks=(1, 35, 50),
        dtype="uint16",
        zarr_format=2,
        compressors=LinfCodec(tau=1),
        filters=None,
    )
    array[:] = stack
    assert max_error(zarr.open_array(str(tmp_path / "v2.zarr"), mode="r")[:], stack) <= 1


# ------------------------------------------------------------------ entry points


@pytest.fixture(scope="module")
def egg_info(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The metadata `pip install` would write from this checkout's setup.py (no build)."""
    base = tmp_path_factory.mktemp("egg")
    subprocess.run(
        [sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(base)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return base


def test_setup_py_declares_both_entry_points(egg_info: Path) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read(next(egg_info.glob("*.egg-info")) / "entry_points.txt")
    declared = {
        "numcodecs.codecs": ("linf", LinfCodec),
        "zarr.codecs": (CODEC_NAME, LinfZarrCodec),
    }
    for group, (name, cls) in declared.items():
        module, _, attribute = entry_points[group][name].partition(":")
        assert getattr(importlib.import_module(module), attribute) is cls


def test_entry_points_resolve_in_a_fresh_process(egg_info: Path) -> None:
    """numcodecs.get_codec and zarr find the codec through the entry points alone, without an import."""
    script = (
        "import sys, numcodecs, zarr.registry\n"
        "assert 'linf_tf.numcodecs_codec' not in sys.modules\n"
        "linf = numcodecs.get_codec({'id': 'linf', 'tau': 2})\n"
        "print(type(linf).__module__, linf.tau, zarr.registry.get_codec_class('linf_tf.linf').__name__)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(egg_info), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["linf_tf.numcodecs_codec", "2", "LinfZarrCodec"]


# ------------------------------------------------------------------ example


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_example_writes_and_checks_a_volume_with_dask(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    example = load_module(ROOT / "examples" / "zarr_dask.py")
    status = example.main(
        [
            str(tmp_path / "v.zarr"),
            "--scheduler",
            "threads",
            "--tau",
            "4",
            "--shape",
            "4,96,96",
            "--chunks",
            "2,64,64",
        ]
    )
    assert status == 0
    output = capsys.readouterr().out
    assert "8 chunks" in output and "max |error| 4 over all chunks (tau 4)" in output


# ------------------------------------------------------------------ benchmarks/array_bench.py


def test_array_bench_checks_every_codec_on_a_tiny_stack(tmp_path: Path) -> None:
    """The benchmark on a made-up data folder: every codec within tau, outputs written."""
    tifffile = pytest.importorskip("tifffile")
    pytest.importorskip("pysz")
    pytest.importorskip("zfpy")
    bench = load_module(ROOT / "benchmarks" / "array_bench.py")
    folder = tmp_path / "data" / "highbit" / "neubias"
    folder.mkdir(parents=True)
    stack = microscopy_stack(slices=2, height=40, width=48)  # written as (Y, X, C): read back channels first
    tifffile.imwrite(folder / "yxc.tif", np.moveaxis(stack, 0, -1), metadata={"axes": "YXC"})
    np.testing.assert_array_equal(bench.read_array(folder / "yxc.tif"), stack)
    output = tmp_path / "out"
    argv = ["--data", str(tmp_path / "data"), "--taus16", "0,3", "--repeats", "1", "--output", str(output)]
    assert bench.main(argv) == 0
    rows = list(csv.DictReader((output / "per_array.csv").open()))
    assert {row["codec"] for row in rows} == {*bench.LOSSY, *bench.LOSSLESS}
    assert len(rows) == 2 * len(bench.LOSSY) + len(bench.LOSSLESS)
    assert all(int(row["max_error"]) <= int(row["tau"]) for row in rows)
    summary = json.loads((output / "summary.json").read_text())
    assert summary["summary"]["neubias"]["3"]["linf"]["max_error"] <= 3
    assert summary["markdown"]["neubias"].startswith("| τ | linf")


def test_array_bench_flags_a_codec_that_breaks_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_module(ROOT / "benchmarks" / "array_bench.py")
    encode, decode = bench.CODERS["sz3"]
    monkeypatch.setitem(bench.CODERS, "sz3", (encode, lambda stream, like: decode(stream, like) // 2))
    results = bench.measure("test", "stack", microscopy_stack(slices=2, height=32, width=32), (1,), 1)
    assert bench.report_violations(results) == 1
