"""Report writers of an evaluation: JSON/CSV, the Markdown tables, the plots and the crops figures."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from linf_tf.evaluation.paper_tables import PAPER_LINF, PAPER_METHODS, PAPER_PSNR
from linf_tf.evaluation.records import (  # noqa: F401
    BASELINE_METHODS,
    MethodOutput,
    Record,
)
from linf_tf.runtime.box import max_value_for
from linf_tf.runtime.tiling import as_hwc

# --- writers ------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """JSON has no inf/nan (PSNR of a lossless image is inf): write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(records: Sequence[Record], summary: Sequence[Mapping[str, Any]], path: Path) -> None:
    """``{"summary": [...], "records": [...]}``, infinite PSNR written as null."""
    payload = {
        "summary": [{k: _json_safe(v) for k, v in row.items()} for row in summary],
        "records": [{k: _json_safe(v) for k, v in dataclasses.asdict(r).items()} for r in records],
    }
    path.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """One row per mapping, columns in the first row's order."""
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def method_order(methods: Iterable[str]) -> list[str]:
    """Baselines first in the paper's order, then the networks, each followed by its slack variants."""
    methods = set(methods)
    baselines = [m for m in BASELINE_METHODS if m in methods]
    networks = sorted(m for m in methods if m not in BASELINE_METHODS)
    return baselines + sorted(networks, key=lambda m: (m.split("@")[0], "@" in m, m))


def markdown_tables(summary: Sequence[Mapping[str, Any]]) -> str:
    """One table per set laid out like the paper's Table 2: rows tau x (PSNR, SSIM, l-inf bound),
    one column per method. The l-inf row shows the mean over images of each image's max error, as
    the paper does, with the worst image in parentheses."""
    by_key = {(row["set"], row["method"], row["tau"]): row for row in summary}
    sections = []
    for set_name in sorted({row["set"] for row in summary}):
        rows = [row for row in summary if row["set"] == set_name]
        methods = method_order(row["method"] for row in rows)
        lines = [
            f"### {set_name} ({rows[0]['images']} images)",
            "",
            "| τ | Measure | " + " | ".join(methods) + " |",
            "|---|---|" + "---:|" * len(methods),
        ]
        for tau in sorted({row["tau"] for row in rows}):
            cells = {m: by_key.get((set_name, m, tau)) for m in methods}
            lines.append(f"| τ={tau} | PSNR | " + " | ".join(_cell(c, "psnr") for c in cells.values()) + " |")
            lines.append("|  | SSIM | " + " | ".join(_cell(c, "ssim") for c in cells.values()) + " |")
            lines.append("|  | ℓ∞ bound | " + " | ".join(_cell(c, "linf") for c in cells.values()) + " |")
        if any(_rate_missed(row) for row in rows):
            lines += [
                "",
                "\\* rate not matched within 2 % for some images (the closest achievable rate used).",
            ]
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def _rate_missed(row: Mapping[str, Any]) -> bool:
    """Whether a rate-matched baseline missed the 2 % window on some image (None: not rate-matched)."""
    fraction = row["rate_matched_fraction"]
    return fraction is not None and fraction < 1.0


def _cell(row: Mapping[str, Any] | None, measure: str) -> str:
    if row is None:
        return "–"
    mark = "*" if _rate_missed(row) and measure == "psnr" else ""
    if measure == "psnr":
        return f"{row['psnr']:.2f}{mark}"
    if measure == "ssim":
        return f"{row['ssim']:.4f}"
    return f"{row['linf']:.2f} ({row['linf_worst']:g})"


# --- plots --------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    return plt


def write_plots(summary: Sequence[Mapping[str, Any]], directory: Path) -> list[Path]:
    """Per set: PSNR vs tau, l-inf vs tau, PSNR vs bits per sample, the slack trade-off and the
    l-inf frontier."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for set_name in sorted({row["set"] for row in summary}):
        rows = [row for row in summary if row["set"] == set_name]
        written.append(
            _line_plot(rows, "tau", "psnr", "τ", "PSNR (dB)", directory / f"{set_name}_psnr_vs_tau.png")
        )
        written.append(
            _line_plot(rows, "tau", "linf", "τ", "mean ℓ∞ error", directory / f"{set_name}_linf_vs_tau.png")
        )
        written.append(
            _line_plot(
                rows, "bpp", "psnr", "bits per sample", "PSNR (dB)", directory / f"{set_name}_psnr_vs_bpp.png"
            )
        )
        written.append(_tradeoff_plot(rows, directory / f"{set_name}_tradeoff.png"))
        written.append(_frontier_plot(rows, directory / f"{set_name}_linf_frontier.png"))
    return written


# Reference codecs keep one look in every plot (grey/black, dashed) so the networks' colours stand out.
REFERENCE_STYLES = {
    "codec": {"color": "black", "linestyle": "-", "marker": "s"},
    "jpegls": {"color": "0.35", "linestyle": "--", "marker": "x"},
    "jpeg2000": {"color": "0.55", "linestyle": "--", "marker": "^"},
    "webp": {"color": "0.75", "linestyle": "--", "marker": "v"},
}


def _network_colors(methods: Iterable[str]) -> dict[str, Any]:
    """One tab10 colour per network (slack variants share their network's colour)."""
    plt = _pyplot()
    networks = sorted({m.split("@")[0] for m in methods if m not in BASELINE_METHODS})
    palette = plt.get_cmap("tab10").colors
    return {name: palette[i % len(palette)] for i, name in enumerate(networks)}


def line_plot_methods(methods: Iterable[str]) -> list[str]:
    """The methods drawn in the per-tau and rate plots: the references and each network at its
    default slack, in table order."""
    return [m for m in method_order(methods) if "@" not in m]


def _line_plot(
    rows: Sequence[Mapping[str, Any]], x: str, y: str, x_label: str, y_label: str, path: Path
) -> Path:
    """The references and each network at its default slack; the other slacks are in the
    trade-off plot (one line per slack here made the plots unreadable)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    methods = line_plot_methods(row["method"] for row in rows)
    colors = _network_colors(methods)
    for method in methods:
        points = sorted((row[x], row[y]) for row in rows if row["method"] == method and math.isfinite(row[y]))
        style = REFERENCE_STYLES.get(method, {"color": colors.get(method), "marker": "o"})
        if points:
            axes.plot(*zip(*points, strict=True), label=method, **style)
    axes.set(xlabel=x_label, ylabel=y_label, title=f"{rows[0]['set']}: {y_label} vs {x_label}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _slack_curves(axes: Any, rows: Sequence[Mapping[str, Any]], x: str) -> dict[int, Mapping[str, Any]]:
    """Per network and tau, one curve of PSNR against ``x`` through its slacks, starting at the
    codec's point; a colour per network. Returns the codec rows by tau."""
    codec_rows = {row["tau"]: row for row in rows if row["method"] == "codec"}
    for network, color in _network_colors(row["method"] for row in rows).items():
        for tau in sorted(codec_rows):
            variants = [row for row in rows if row["tau"] == tau and row["method"].split("@")[0] == network]
            points = sorted(
                [(codec_rows[tau][x], codec_rows[tau]["psnr"])]
                + [(row[x], row["psnr"]) for row in variants if math.isfinite(row[x])]
            )
            label = network if tau == min(codec_rows) else None
            axes.plot(*zip(*points, strict=True), color=color, marker="o", markersize=3, label=label)
    return codec_rows


def _tradeoff_plot(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """PSNR against the *guaranteed* l-inf error (1 + kappa) tau: per network and tau one curve
    through its slacks, starting at the codec (kappa = 0, bound tau); a colour per network, a
    label per tau at the codec's point; JPEG-LS as the reference."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    codec_rows = _slack_curves(axes, rows, "bound")
    for tau, row in sorted(codec_rows.items()):
        axes.annotate(
            f"τ={tau}",
            (row["bound"], row["psnr"]),
            textcoords="offset points",
            xytext=(-4, -11),
            fontsize="x-small",
            ha="right",
        )
    jls = sorted((row["bound"], row["psnr"]) for row in rows if row["method"] == "jpegls")
    if jls:
        axes.plot(*zip(*jls, strict=True), label="jpegls", **REFERENCE_STYLES["jpegls"])
    axes.set(
        xlabel="guaranteed ℓ∞ error (1+κ)τ", ylabel="PSNR (dB)", title=f"{rows[0]['set']}: PSNR vs guarantee"
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _frontier_plot(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """PSNR against the *measured* l-inf error (mean over images of each image's worst sample): per
    network and tau one curve through its slacks, from the codec's point; the paper's l-inf-CNN
    and MSE points (its Tables 3-4) where it reports the set. A better loss moves a network's
    curves up and to the left."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    codec_rows = _slack_curves(axes, rows, "linf")
    set_name = str(rows[0]["set"]).lower()
    for method, marker in (("ℓ∞-CNN", "*"), ("MSE", "D")):
        column = PAPER_METHODS.index(method)
        paper = [
            (PAPER_LINF[set_name][tau][column], PAPER_PSNR[set_name][tau][column])
            for tau in sorted(codec_rows)
            if tau in PAPER_PSNR.get(set_name, {})
        ]
        if paper:
            axes.plot(*zip(*paper, strict=True), linestyle="none", marker=marker, color="black",
                      markerfacecolor="none", label=f"paper {method}")
    axes.set(xlabel="mean per-image ℓ∞ error", ylabel="PSNR (dB)", title=f"{rows[0]['set']}: ℓ∞ frontier")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def crop_window(image: np.ndarray, size: int = 96) -> tuple[slice, slice]:
    """A ``size`` x ``size`` window (smaller images: all of it) on the most detailed region, where
    compression artifacts show: the block with the largest gradient energy on a coarse grid."""
    gray = as_hwc(image).astype(np.float64).mean(axis=-1)
    height, width = gray.shape
    size_y, size_x = min(size, height), min(size, width)
    energy = np.abs(np.diff(gray, axis=0))[:, :-1] + np.abs(np.diff(gray, axis=1))[:-1, :]
    best, best_at = -1.0, (0, 0)
    for top in range(0, height - size_y + 1, max(size_y // 2, 1)):
        for left in range(0, width - size_x + 1, max(size_x // 2, 1)):
            score = float(energy[top : top + size_y, left : left + size_x].sum())
            if score > best:
                best, best_at = score, (top, left)
    top, left = best_at
    return slice(top, top + size_y), slice(left, left + size_x)


def write_crops_figure(
    original: np.ndarray, outputs: Mapping[str, MethodOutput], bit_depth: int, title: str, path: Path
) -> Path:
    """Top row: the original crop and each method's crop ("codec" is the decoded image); bottom row:
    each method's |error| map on one shared colour scale, so errors compare across methods."""
    plt = _pyplot()
    window = crop_window(original)
    methods = method_order(outputs)
    errors = {
        m: np.abs(as_hwc(outputs[m].image).astype(np.float64) - as_hwc(original)).max(axis=-1)[window]
        for m in methods
    }
    error_max = max(float(e.max()) for e in errors.values()) or 1.0
    columns = len(methods) + 1
    figure, axes = plt.subplots(2, columns, figsize=(2.0 * columns, 4.6), squeeze=False, layout="constrained")
    _show(axes[0][0], original[window], bit_depth, "original")
    axes[1][0].axis("off")  # under the original: holds the shared colour bar instead of a map
    for column, method in enumerate(methods, start=1):
        _show(axes[0][column], outputs[method].image[window], bit_depth, method)
        shown = axes[1][column].imshow(errors[method], cmap="magma", vmin=0, vmax=error_max)
        axes[1][column].set_title(f"|error| max {errors[method].max():g}", fontsize=8)
        axes[1][column].axis("off")
    figure.colorbar(shown, ax=axes[1][0], location="left", shrink=0.9, label="|error|")
    figure.suptitle(title)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _show(axes: Any, image: np.ndarray, bit_depth: int, title: str) -> None:
    scaled = image.astype(np.float64) / max_value_for(bit_depth)
    if scaled.ndim == 3 and scaled.shape[-1] == 1:
        scaled = scaled[..., 0]
    if scaled.ndim == 3 and scaled.shape[-1] not in (3, 4):
        scaled = scaled[..., 0]  # multi-plane stacks: show the first plane
    axes.imshow(scaled, cmap="gray" if scaled.ndim == 2 else None, vmin=0, vmax=1)
    axes.set_title(title, fontsize=8)
    axes.axis("off")
