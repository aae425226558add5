"""Evaluation behind the paper's Tables 1-4 (§5): codec vs rate-matched JPEG 2000 / WebP vs CNN restoration.

For every image and error bound ``tau`` the methods are

* ``codec``     the near-lossless codec's decoded image y (|y - x| <= tau, the paper's "CALIC" column);
* ``jpeg2000``  JPEG 2000 (OpenJPEG) at the codec's size: its PSNR target is bisected to within 2 %;
* ``webp``      lossy WebP at the codec's size (quality bisected, per encoder effort); 8-bit gray/RGB
  only, so skipped for 16-bit data;
* ``jpegls``    JPEG-LS near-lossless with NEAR = tau (CharLS), a standard codec with the same bound;
* ``NAME``      a restoration network applied to y, projected into the box y ± kappa*tau with the default
  slack kappa, so |x_hat - x| <= (1 + kappa) tau; ``NAME@k`` the same with slack k.

Outputs of every method are integer images like a decoder's (CNN outputs are rounded, then clipped
to the integer box, which keeps the guarantee exact). Measures: PSNR, SSIM, the l-inf error and bits
per sample (the codec's rate for the networks, which restore the codec's own stream).

PSNR and SSIM are computed on all samples of all channels (RGB for colour images), with the
image's own peak ``2**bit_depth - 1``. A baseline that misses the 2 % rate window (tiny images: the
encoders' size steps are coarse) keeps its closest stream and is flagged (``rate_matched=False``;
marked * in the Markdown table).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
from tqdm import tqdm

from linf_tf import codec, imageio
from linf_tf.evaluation import metrics
from linf_tf.evaluation.records import (  # noqa: F401
    BASELINE_METHODS,
    JPEGLS_MAX_NEAR,
    MAX_BISECTION_STEPS,
    RATE_TOLERANCE,
    REFERENCE_CODECS,
    WEBP_METHODS,
    MethodOutput,
    RateMatch,
    Record,
)
from linf_tf.evaluation.references import (  # noqa: F401
    jpegls,
    rate_matched_jpeg2000,
    rate_matched_webp,
)
from linf_tf.evaluation.report import (  # noqa: F401
    REFERENCE_STYLES,
    crop_window,
    line_plot_methods,
    markdown_tables,
    method_order,
    write_crops_figure,
    write_csv,
    write_json,
    write_plots,
)
from linf_tf.image_samples import ImageData
from linf_tf.pixels import convert_channels
from linf_tf.runtime import WEIGHTS_DIR as DEFAULT_WEIGHTS_DIR  # noqa: F401  (re-exported)
from linf_tf.runtime.box import check_slacks, max_value_for, to_integer_box  # noqa: F401
from linf_tf.runtime.litert import TFLiteRestorer  # noqa: F401
from linf_tf.runtime.registry import DEFAULT_MODEL, load_restorer, load_shipped
from linf_tf.runtime.tf_loaders import KerasRestorer, SavedModelRestorer, receptive_radius  # noqa: F401
from linf_tf.runtime.tiling import Restorer, restore_tiled  # noqa: F401

log = logging.getLogger(__name__)


# --- models -----------------------------------------------------------------------------------


def load_model(path: str | Path, channels: int = 3) -> Restorer:
    """Evaluation's model loader: ``default`` is the *Keras* weights of the shipped model for
    ``channels``-channel images (3: the RGB model; 1: the gray model, for the ``--gray`` protocol),
    the reference the README's tables were measured with (``linf`` runs its LiteRT twin); anything
    else as :func:`linf_tf.runtime.load_restorer`."""
    if str(path) == DEFAULT_MODEL:
        return load_shipped(channels, prefer_keras=True)
    return load_restorer(path, channels=channels)


def parse_model_specs(text: str) -> dict[str, str]:
    """``"NAME=PATH,NAME2=PATH2"`` -> ``{NAME: PATH}``; PATH may be ``default``."""
    specs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"model spec {item!r} is not NAME=PATH")
        if "@" in name or name in BASELINE_METHODS:
            raise ValueError(f"model name {name!r} clashes with a method name or uses '@'")
        if name in specs:
            raise ValueError(f"model name {name!r} given twice")
        specs[name] = path
    return specs


# --- one image ----------------------------------------------------------------------------------


def method_outputs(
    pixels: np.ndarray,
    bit_depth: int,
    tau: int,
    models: Mapping[str, Restorer],
    slacks: Sequence[float],
    default_slack: float,
    tile: int = 256,
    overlap: int = 16,
    references: Sequence[str] = REFERENCE_CODECS,
) -> dict[str, MethodOutput]:
    """Every method's integer reconstruction of ``pixels`` at ``tau``, keyed by method name;
    ``references`` picks which reference codecs run (the slow part: two rate searches)."""
    pixels = np.ascontiguousarray(pixels)  # imagecodecs rejects strided views such as image[..., :3]
    stream = codec.encode(pixels, tau, bit_depth=bit_depth)
    decoded = codec.decode(stream).reshape(pixels.shape)
    outputs = {"codec": MethodOutput(decoded, len(stream), bound=float(tau))}
    outputs.update(_baseline_outputs(pixels, bit_depth, tau, len(stream), references))
    for name, restorer in models.items():
        outputs.update(
            _model_outputs(
                name, restorer, decoded, len(stream), bit_depth, tau, slacks, default_slack, tile, overlap
            )
        )
    return outputs


def _baseline_outputs(
    pixels: np.ndarray,
    bit_depth: int,
    tau: int,
    target_bytes: int,
    references: Sequence[str] = REFERENCE_CODECS,
) -> dict[str, MethodOutput]:
    """The rate-matched and JPEG-LS baselines; one that cannot code this image (WebP on 16-bit data,
    any of them on many-channel stacks) is left out with a warning rather than ending the run."""
    coders: dict[str, Callable[[], MethodOutput | None]] = {
        "jpeg2000": lambda: _as_output(rate_matched_jpeg2000(pixels, target_bytes, bit_depth), pixels),
        "webp": lambda: _as_output(rate_matched_webp(pixels, target_bytes), pixels),
        "jpegls": lambda: _jpegls_output(pixels, tau),
    }
    outputs: dict[str, MethodOutput] = {}
    for name, code in coders.items():
        if name not in references:
            continue
        try:
            output = code()
        except (RuntimeError, ValueError) as error:  # imagecodecs' errors derive from RuntimeError
            log.warning("%s skipped for a %s image: %s", name, pixels.shape, error)
            continue
        if output is not None:
            outputs[name] = output
    return outputs


def _as_output(match: RateMatch | None, pixels: np.ndarray) -> MethodOutput | None:
    if match is None:
        return None
    return MethodOutput(
        match.decoded.reshape(pixels.shape), len(match.data), rate_matched=match.within_tolerance
    )


def _jpegls_output(pixels: np.ndarray, tau: int) -> MethodOutput | None:
    stream = jpegls(pixels, tau)
    if stream is None:
        return None
    return MethodOutput(
        imagecodecs.jpegls_decode(stream).reshape(pixels.shape), len(stream), bound=float(tau)
    )


def _model_outputs(
    name: str,
    restorer: Restorer,
    decoded: np.ndarray,
    num_bytes: int,
    bit_depth: int,
    tau: int,
    slacks: Sequence[float],
    default_slack: float,
    tile: int,
    overlap: int,
) -> dict[str, MethodOutput]:
    """``NAME`` at the default slack and ``NAME@k`` for each other slack, from one network run.

    The network runs once with the widest slack: clipping that result into a narrower box gives the
    same pixels as running with the narrower slack (the boxes are nested), at a fraction of the cost.
    """
    labels = {name: default_slack} | {f"{name}@{k:g}": k for k in slacks if k != default_slack}
    widest = max(labels.values())
    restored = restore_tiled(restorer, decoded, tau, widest, tile, overlap, bit_depth)
    max_value = max_value_for(bit_depth)
    return {
        label: MethodOutput(
            to_integer_box(restored, decoded, tau, k, max_value), num_bytes, bound=(1 + k) * tau
        )
        for label, k in labels.items()
    }


def _records_for(
    set_name: str,
    image_name: str,
    tau: int,
    original: np.ndarray,
    bit_depth: int,
    outputs: Mapping[str, MethodOutput],
) -> list[Record]:
    max_value = max_value_for(bit_depth)
    return [
        Record(
            set=set_name,
            method=method,
            tau=tau,
            image=image_name,
            psnr=metrics.psnr(original, out.image, max_value),
            ssim=metrics.ssim(original, out.image, max_value),
            linf=metrics.linf_error(original, out.image),
            bpp=metrics.bits_per_sample(out.num_bytes, original),
            bound=out.bound,
            rate_matched=out.rate_matched,
        )
        for method, out in outputs.items()
    ]


# --- whole evaluation ---------------------------------------------------------------------------


def list_images(directory: str | Path, limit: int | None = None) -> list[Path]:
    """Sorted image files of ``directory`` (not recursive); a clear error when there are none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"data directory does not exist: {directory}")
    paths = imageio.list_images(directory, limit=limit)
    if not paths:
        raise FileNotFoundError(f"no readable images in {directory} (PNG, TIFF, BMP, PGM/PPM, DICOM)")
    return paths


def evaluate(
    datasets: Mapping[str, Sequence[str | Path]],
    taus: Sequence[int],
    models: Mapping[str, Restorer],
    slacks: Sequence[float] = (),
    *,
    default_slack: float = 0.5,
    tile: int = 256,
    overlap: int = 16,
    progress: bool = True,
    references: Sequence[str] = REFERENCE_CODECS,
    gray: bool = False,
) -> list[Record]:
    """Run every method on every image of every set at every tau; one Record each.

    ``gray``: code and restore the BT.601 luma of each image (the paper's protocol: CALIC is a gray
    coder), so every method sees one channel. Taus too large for an image's bit depth are skipped
    with a warning.
    """
    check_slacks([*slacks, default_slack])
    check_references(references)
    jobs = [(set_name, Path(path)) for set_name, paths in datasets.items() for path in paths]
    records: list[Record] = []
    bar = tqdm(total=len(jobs) * len(taus), desc="evaluate", unit="image·tau", disable=not progress)
    for set_name, path in jobs:
        data = read_test_image(path, gray)
        for tau in taus:
            bar.set_postfix_str(f"{set_name}/{path.name} tau={tau}")
            if tau > max_value_for(data.bit_depth) // 2:
                log.warning("skipping tau=%d for %d-bit %s", tau, data.bit_depth, path)
            else:
                outputs = method_outputs(
                    data.pixels, data.bit_depth, tau, models, slacks, default_slack, tile, overlap, references
                )
                records += _records_for(set_name, path.name, tau, data.pixels, data.bit_depth, outputs)
            bar.update()
    bar.close()
    return records


def read_test_image(path: str | Path, gray: bool = False) -> ImageData:
    """An evaluation image as the codec takes it; with ``gray``, its BT.601 luma (HxW)."""
    data = imageio.read_image(path)
    if not gray or data.channels == 1:
        return data
    luma = convert_channels(data.pixels, 1)[:, :, 0]
    return dataclasses.replace(data, pixels=luma)


def check_references(references: Iterable[str]) -> None:
    unknown = sorted(set(references) - set(REFERENCE_CODECS))
    if unknown:
        raise ValueError(f"unknown reference codecs {unknown}; choose from {list(REFERENCE_CODECS)}")


def read_records(path: str | Path) -> list[Record]:
    """The per-image records of an earlier run's results.json (null PSNR back to inf)."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text())["records"]
        records = [Record(**row) for row in rows]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not an evaluate.py results.json: {error}") from error
    return [r if r.psnr is not None else dataclasses.replace(r, psnr=math.inf) for r in records]


def merge_records(earlier: Iterable[Record], current: Sequence[Record]) -> list[Record]:
    """``current`` plus the earlier records it does not redo (same set, method, tau and image):
    a new model can be added to an earlier run without rerunning its slow reference codecs."""
    done = {(r.set, r.method, r.tau, r.image) for r in current}
    kept = [r for r in earlier if (r.set, r.method, r.tau, r.image) not in done]
    return kept + list(current)


SUMMARY_MEASURES = ("psnr", "ssim", "linf", "bpp")


def aggregate(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Means of psnr/ssim/linf/bpp per (set, method, tau), ``linf_worst`` = the max over images, the
    guaranteed ``bound`` and the fraction of images a rate-matched baseline matched."""
    groups: dict[tuple[str, str, int], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.set, record.method, record.tau)].append(record)
    summary = []
    for (set_name, method, tau), group in groups.items():
        row: dict[str, Any] = {"set": set_name, "method": method, "tau": tau, "images": len(group)}
        for measure in SUMMARY_MEASURES:
            row[measure] = float(np.mean([getattr(r, measure) for r in group]))
        row["linf_worst"] = max(r.linf for r in group)
        row["bound"] = group[0].bound
        matched = [r.rate_matched for r in group if r.rate_matched is not None]
        row["rate_matched_fraction"] = float(np.mean(matched)) if matched else None
        summary.append(row)
    return summary


def write_report(
    records: Sequence[Record],
    datasets: Mapping[str, Sequence[str | Path]],
    taus: Sequence[int],
    models: Mapping[str, Restorer],
    slacks: Sequence[float],
    output_dir: Path,
    *,
    default_slack: float = 0.5,
    tile: int = 256,
    overlap: int = 16,
    references: Sequence[str] = REFERENCE_CODECS,
    gray: bool = False,
) -> dict[str, Path]:
    """Write results.json/.csv, summary.csv, results.md, the plots and one crops figure per set
    (the set's first image at the largest tau, recomputed: keeping every output in memory would not
    scale). Returns the written paths by kind."""
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = aggregate(records)
    paths = {
        "json": output_dir / "results.json",
        "csv": output_dir / "results.csv",
        "summary_csv": output_dir / "summary.csv",
        "markdown": output_dir / "results.md",
    }
    write_json(records, summary, paths["json"])
    write_csv([dataclasses.asdict(r) for r in records], paths["csv"])
    write_csv(summary, paths["summary_csv"])
    paths["markdown"].write_text(markdown_tables(summary))
    plot_dir = output_dir / "plots"
    for index, plot in enumerate(write_plots(summary, plot_dir)):
        paths[f"plot{index}"] = plot
    for set_name, image_paths in datasets.items():
        data = read_test_image(image_paths[0], gray)
        tau = max(t for t in taus if t <= max_value_for(data.bit_depth) // 2)
        outputs = method_outputs(
            data.pixels, data.bit_depth, tau, models, slacks, default_slack, tile, overlap, references
        )
        title = f"{set_name}/{Path(image_paths[0]).name}, τ={tau}"
        paths[f"crops_{set_name}"] = write_crops_figure(
            data.pixels, outputs, data.bit_depth, title, plot_dir / f"{set_name}_crops.png"
        )
    return paths
