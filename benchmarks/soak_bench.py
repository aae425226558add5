"""Soak test of the ``linf`` batch mode on a folder tree of 1,000+ mixed files (not part of CI).

Builds a temporary tree of valid images (8/16-bit gray and RGB PNG/TIFF, 12-bit DICOM, signed CT-like
DICOM with and without negative samples, RGBA, palette and gray+alpha PNG, 12-bit PNG with sBIT,
big-endian TIFF, ZYX stacks), bad files (empty, truncated PNG/TIFF/DICOM, text named .png, float and
int32 TIFF) and non-image files, then runs

    linf compress IN -r -t TAU --signed-offset -o STREAMS
    linf decompress STREAMS -r -o OUT

as a user would (subprocesses) and checks that every valid file round-trips within tau (signed
files back as int16 TIFF, stacks in their original axis order), that every bad file is named in the
error report and no valid one is, that the summary counts add up to the files in the tree, and
that nothing else is written. Codec only (no TensorFlow). Exit status 1 if any check fails.

    nice -n 5 .venv/bin/python benchmarks/soak_bench.py --files 1000
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from skimage import data as skdata

from linf_tf.imageio import read_image, write_image

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("camera", "astronaut", "coffee", "chelsea", "rocket", "moon", "page", "coins")


@dataclass(frozen=True)
class Sample:
    """One file of the tree and what the batch must do with it."""

    path: Path
    outcome: str  # "valid", "bad" (must fail, named) or "skipped" (not an image by its name)
    stack: bool = False  # a ZYX stack: a sidecar is written, decompress gives the axes back
    signed: bool = False  # declared signed: stored signed in the stream (format 3), back as int16 TIFF


class Maker:
    """Deterministic random crops of the scikit-image samples."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.images = {name: getattr(skdata, name)() for name in SOURCES}

    def crop(self, rgb: bool, sixteen: bool = False) -> np.ndarray:
        name = SOURCES[int(self.rng.integers(len(SOURCES)))]
        image = self.images[name]
        if rgb and image.ndim == 2:
            image = np.dstack([image, image[::-1], image[:, ::-1]])
        if not rgb and image.ndim == 3:
            image = image[..., int(self.rng.integers(3))]
        height, width = (int(n) for n in self.rng.integers(8, 72, 2))
        top = int(self.rng.integers(0, image.shape[0] - height))
        left = int(self.rng.integers(0, image.shape[1] - width))
        pixels = np.ascontiguousarray(image[top : top + height, left : left + width])
        if sixteen:
            noise = self.rng.integers(0, 256, pixels.shape)
            pixels = (pixels.astype(np.uint16) << 8) | noise.astype(np.uint16)
        return pixels


def _write_dicom(path: Path, pixels: np.ndarray, bits_stored: int) -> None:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, bits_stored, bits_stored - 1
    dataset.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    dataset.PixelData = pixels.tobytes()
    dataset.save_as(path, enforce_file_format=True)


def _png_with_sbit(path: Path, pixels: np.ndarray) -> None:
    write_image(path, pixels, bit_depth=12)


def _palette_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(pixels).convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path)


def _truncated(writer: Callable[[Path], None], path: Path) -> None:
    writer(path)
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])


def _kinds(maker: Maker) -> list[tuple[str, str, Callable[[Path], None], dict]]:
    """(name, suffix, writer, Sample flags); the tree cycles through them in this order."""
    def crop(rgb: bool, sixteen: bool = False) -> np.ndarray:
        return maker.crop(rgb, sixteen)

    def ct(shift: int) -> np.ndarray:
        return (crop(False).astype(np.int16) * 8 + shift).astype(np.int16)  # signed 12-bit range

    valid = [
        ("gray8", ".png", lambda p: write_image(p, crop(False)), {}),
        ("rgb8", ".png", lambda p: write_image(p, crop(True)), {}),
        ("gray16", ".png", lambda p: write_image(p, crop(False, True)), {}),
        ("rgb16", ".png", lambda p: write_image(p, crop(True, True)), {}),
        ("gray8", ".tif", lambda p: write_image(p, crop(False)), {}),
        ("rgb8", ".tif", lambda p: write_image(p, crop(True)), {}),
        ("gray16", ".tif", lambda p: write_image(p, crop(False, True)), {}),
        ("rgb16", ".tiff", lambda p: write_image(p, crop(True, True)), {}),
        ("mr12", ".dcm", lambda p: _write_dicom(p, crop(False).astype(np.uint16) * 16, 12), {}),
        ("ct_positive", ".dcm", lambda p: _write_dicom(p, ct(0), 12), {"signed": True}),
        ("ct_negative", ".dcm", lambda p: _write_dicom(p, ct(-1024), 12), {"signed": True}),
        ("rgba8", ".png", lambda p: write_image(p, _rgba(crop(True))), {}),
        ("palette", ".png", lambda p: _palette_png(p, crop(True)), {}),
        ("gray_alpha", ".png", lambda p: write_image(p, np.dstack([crop(False)] * 2)), {}),
        ("sbit12", ".png", lambda p: _png_with_sbit(p, crop(False).astype(np.uint16) * 16), {}),
        ("big_endian16", ".tif", lambda p: tifffile.imwrite(p, crop(False, True), byteorder=">"), {}),
        ("zyx_stack", ".tif", lambda p: tifffile.imwrite(p, _stack(crop), metadata={"axes": "ZYX"}),
         {"stack": True}),
    ]
    bad = [
        ("empty", ".png", lambda p: p.write_bytes(b""), {}),
        ("empty", ".tif", lambda p: p.write_bytes(b""), {}),
        ("truncated", ".png", lambda p: _truncated(lambda q: write_image(q, crop(True)), p), {}),
        ("truncated", ".tif", lambda p: _truncated(lambda q: write_image(q, crop(False, True)), p), {}),
        ("truncated", ".dcm", lambda p: _truncated(lambda q: _write_dicom(q, ct(0), 12), p), {}),
        ("text", ".png", lambda p: p.write_text("this is not an image\n"), {}),
        ("float", ".tif", lambda p: tifffile.imwrite(p, crop(False).astype(np.float32) / 255), {}),
        ("int32", ".tif", lambda p: tifffile.imwrite(p, crop(False).astype(np.int32)), {}),
    ]
    skipped = [("notes", ".txt", lambda p: p.write_text("a note beside the images\n"), {})]
    groups = (("valid", valid), ("bad", bad), ("skipped", skipped))
    return [(name, suffix, writer, {"outcome": outcome, **flags})
            for outcome, group in groups for name, suffix, writer, flags in group]


def _rgba(rgb: np.ndarray) -> np.ndarray:
    alpha = (rgb[..., 0] // 2 + 64).astype(rgb.dtype)
    return np.ascontiguousarray(np.dstack([rgb, alpha]))


def _stack(crop: Callable[..., np.ndarray]) -> np.ndarray:
    plane = crop(False, True)
    return np.stack([np.roll(plane, shift, axis=1) for shift in range(5)])  # Z = 5


def build_tree(root: Path, count: int, seed: int) -> list[Sample]:
    """``count`` files under ``root`` (and 9 sub-folders, for -r), cycling through every kind."""
    kinds = _kinds(Maker(seed))
    samples = []
    for index in range(count):
        name, suffix, writer, flags = kinds[index % len(kinds)]
        folder = root if index % 10 == 0 else root / f"part{index % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{index:05d}_{name}{suffix}"
        writer(path)
        samples.append(Sample(path=path, **flags))
    return samples


def run_linf(*arguments: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "linf_tf.cli", *arguments], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    return result, time.perf_counter() - start


def failed_names(stderr: str) -> set[str]:
    """The files named by ``linf: error: PATH: reason`` lines."""
    named = re.findall(r"^linf: error: (.+?)(?:: | has )", stderr, re.MULTILINE)
    return {Path(path).name for path in named}


def summary_counts(stdout: str, verb: str) -> tuple[int, int, int]:
    match = re.search(rf"{verb} (\d+) file\(s\), (\d+) failed(?:, (\d+) skipped)?", stdout)
    if not match:
        return (-1, -1, -1)
    done, failed, skipped = match.groups()
    return int(done), int(failed), int(skipped or 0)


def expected_outputs(samples: list[Sample], root: Path, suffix_of: Callable[[Sample], str]) -> set[Path]:
    return {sample.path.relative_to(root).with_suffix(suffix_of(sample)) for sample in samples}


def listing(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*") if path.is_file()}


def output_suffix(sample: Sample) -> str:
    """What ``linf decompress --format png`` writes: TIFF for what PNG cannot hold."""
    if sample.stack or sample.signed or "gray_alpha" in sample.path.name:
        return ".tif"
    return ".png"


def check_round_trip(sample: Sample, decoded_path: Path, tau: int) -> str | None:
    """None when ``decoded_path`` holds ``sample`` within tau, else what is wrong."""
    if sample.stack:
        original, decoded = tifffile.imread(sample.path), tifffile.imread(decoded_path)
        with tifffile.TiffFile(decoded_path) as tif:
            if tif.series[0].axes != "ZYX":
                return f"axes {tif.series[0].axes}, expected ZYX"
    else:
        original = read_image(sample.path, keep_signed=True).pixels
        decoded = read_image(decoded_path, keep_signed=True).pixels
    if original.shape != decoded.shape or original.dtype != decoded.dtype:
        return f"{decoded.shape} {decoded.dtype}, expected {original.shape} {original.dtype}"
    error = int(np.abs(original.astype(np.int64) - decoded.astype(np.int64)).max())
    return None if error <= tau else f"max error {error} > tau {tau}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no output)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="files in the tree (default 1000)")
    parser.add_argument("--tau", type=int, default=2, help="error bound for compress (default 2)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the tree here (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="linf_soak_") as temporary:
        return soak(args.workdir or Path(temporary), args.files, args.tau, args.seed)


def soak(work: Path, count: int, tau: int, seed: int) -> int:
    tree, streams, out = work / "in", work / "streams", work / "out"
    samples = build_tree(tree, count, seed)
    tree_before = listing(tree)
    by_outcome = Counter(sample.outcome for sample in samples)
    valid = [s for s in samples if s.outcome == "valid"]
    bad = {s.path.name for s in samples if s.outcome == "bad"}
    problems: list[str] = []

    compressed, compress_seconds = run_linf("compress", str(tree), "-r", "-t", str(tau), "--signed-offset",
                                            "-o", str(streams))
    if "Traceback" in compressed.stderr:
        problems.append("compress printed a traceback")
    if compressed.returncode != 2:
        problems.append(f"compress exit status {compressed.returncode}, expected 2 (bad files present)")
    named = failed_names(compressed.stderr)
    if named != bad:
        problems.append(f"compress: bad files not named {sorted(bad - named)[:5]}, valid files named "
                        f"{sorted(named - bad)[:5]}")
    counts = summary_counts(compressed.stdout, "compressed")
    expected = (by_outcome["valid"], by_outcome["bad"], by_outcome["skipped"])
    if counts != expected or sum(counts) != len(samples):
        problems.append(f"compress summary {counts}, expected {expected} (sum {len(samples)})")
    stream_files = expected_outputs(valid, tree, lambda s: ".nlc")
    # Format 3 records signed samples in the stream itself: only stacks still need a sidecar.
    sidecars = {s.path.relative_to(tree).with_suffix(".nlc.json") for s in valid if s.stack}
    written = listing(streams)
    if written != stream_files | sidecars:
        wanted = stream_files | sidecars
        problems.append(f"streams folder: missing {sorted(map(str, wanted - written))[:5]}, "
                        f"unexpected {sorted(map(str, written - wanted))[:5]}")

    decompressed, decompress_seconds = run_linf("decompress", str(streams), "-r", "-o", str(out))
    if decompressed.returncode != 0 or "Traceback" in decompressed.stderr:
        problems.append(f"decompress exit status {decompressed.returncode}: {decompressed.stderr[-500:]}")
    counts_back = summary_counts(decompressed.stdout, "decompressed")
    if counts_back != (len(valid), 0, 0):  # sidecars are not counted as skipped
        problems.append(f"decompress summary {counts_back}, expected {(len(valid), 0, 0)}")
    outputs = expected_outputs(valid, tree, output_suffix)
    if listing(out) != outputs:
        problems.append(f"output folder: missing {sorted(map(str, outputs - listing(out)))[:5]}, "
                        f"unexpected {sorted(map(str, listing(out) - outputs))[:5]}")
    if listing(tree) != tree_before:
        problems.append(f"the input tree changed: {sorted(map(str, listing(tree) ^ tree_before))[:5]}")
    if set(work.iterdir()) != {tree, streams, out}:
        problems.append(f"unexpected entries in {work}: {sorted(p.name for p in work.iterdir())}")
    mismatches = []
    for sample in valid:
        decoded_path = out / sample.path.relative_to(tree).with_suffix(output_suffix(sample))
        if decoded_path.is_file():
            wrong = check_round_trip(sample, decoded_path, tau)
            if wrong:
                mismatches.append(f"{sample.path.name}: {wrong}")
    problems.extend(mismatches[:10])

    kinds = Counter(re.sub(r"^\d+_", "", s.path.name) for s in samples)
    print(f"tree: {len(samples)} files ({by_outcome['valid']} valid, {by_outcome['bad']} bad, "
          f"{by_outcome['skipped']} not images), {len(kinds)} kinds, tau {tau}")
    print(f"compress:   {_first_line(compressed.stdout)}")
    print(f"            exit {compressed.returncode}, {len(named)} files named in errors, "
          f"{len(sidecars)} sidecars, {compress_seconds:.1f} s")
    print(f"decompress: {_first_line(decompressed.stdout)}")
    print(f"            exit {decompressed.returncode}, {decompress_seconds:.1f} s")
    print(f"round trips within tau: {len(valid) - len(mismatches)} of {len(valid)}")
    for problem in problems:
        print(f"FAIL: {problem}")
    print("PASS" if not problems else f"{len(problems)} check(s) failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
