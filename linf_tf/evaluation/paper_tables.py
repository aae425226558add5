"""README tables from an evaluate.py run, next to the paper's Tables 3 (Set14) and 4 (BSD100).

The command line is ``benchmarks/paper_tables.py`` (flags only)::

    python benchmarks/paper_tables.py out/eval_grid/results.json --networks=linf,mse,mse_gan,arcnn \
        --output=docs/results/paper_comparison.md

Reads the run's summary (mean PSNR/SSIM/l-inf per set, method and tau) and writes, per set: PSNR of
every method with each network at the default slack and its gain over the codec, SSIM and l-inf
(mean over images of each image's max error, worst image in parentheses), then the slack trade-off
of each network. Paper columns appear where the paper reports that set and tau.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Paper Tables 3 and 4, PSNR (dB) and mean l-inf, tau = 6..14 in steps of 2:
# CALIC, l-inf-CNN multi-rate, MSE, MSE+GAN, ARCNN.
PAPER_METHODS = ("CALIC", "ℓ∞-CNN", "MSE", "MSE+GAN", "ARCNN")
PAPER_PSNR = {
    "set14": {
        6: (37.15, 39.05, 39.20, 38.41, 37.95),
        8: (35.01, 37.46, 37.60, 36.96, 36.59),
        10: (33.34, 36.11, 36.20, 35.76, 35.08),
        12: (31.95, 35.01, 35.14, 34.85, 34.01),
        14: (30.73, 33.94, 34.06, 33.71, 32.96),
    },
    "bsd100": {
        6: (37.08, 39.12, 39.25, 38.45, 38.05),
        8: (34.81, 37.21, 37.36, 36.75, 36.37),
        10: (33.07, 35.75, 35.88, 35.52, 34.89),
        12: (31.70, 34.50, 34.61, 34.15, 33.67),
        14: (30.50, 33.50, 33.61, 33.24, 32.67),
    },
}
PAPER_LINF = {
    "set14": {
        6: (6, 7.37, 11.54, 11.64, 11.50),
        8: (8, 10.05, 15.18, 15.27, 15.64),
        10: (10, 12.13, 18.51, 18.76, 19.14),
        12: (12, 14.24, 21.64, 21.83, 21.71),
        14: (14, 16.32, 24.42, 24.86, 25.35),
    },
    "bsd100": {
        6: (6, 7.19, 11.14, 11.28, 11.73),
        8: (8, 9.87, 14.78, 15.09, 15.73),
        10: (10, 12.14, 18.58, 18.94, 19.15),
        12: (12, 14.48, 21.23, 21.65, 22.05),
        14: (14, 16.84, 25.12, 25.40, 26.10),
    },
}
REFERENCES = ("codec", "jpegls", "jpeg2000", "webp")
LABELS = {"codec": "codec", "jpegls": "JPEG-LS", "jpeg2000": "JPEG 2000", "webp": "WebP"}

Summary = Mapping[tuple[str, str, int], Mapping[str, Any]]


def load_summary(path: Path) -> Summary:
    rows = json.loads(path.read_text())["summary"]
    return {(row["set"], row["method"], row["tau"]): row for row in rows}


def _psnr(row: Mapping[str, Any] | None) -> str:
    return "–" if row is None or row["psnr"] is None else f"{row['psnr']:.2f}"


def _linf(row: Mapping[str, Any] | None) -> str:
    return "–" if row is None else f"{row['linf']:.2f} ({row['linf_worst']:g})"


def _gain(row: Mapping[str, Any] | None, codec: Mapping[str, Any] | None) -> str:
    if row is None or codec is None:
        return "–"
    return f"{row['psnr']:.2f} ({row['psnr'] - codec['psnr']:+.2f})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def psnr_table(summary: Summary, set_name: str, taus: Sequence[int], networks: Sequence[str]) -> list[str]:
    paper = PAPER_PSNR.get(set_name, {})
    header = ["τ", *(LABELS[m] for m in REFERENCES), *(f"{n} (gain)" for n in networks)]
    if paper:
        header.append("paper: " + " / ".join(PAPER_METHODS))
    rows = []
    for tau in taus:
        codec = summary.get((set_name, "codec", tau))
        row = [str(tau), *(_psnr(summary.get((set_name, m, tau))) for m in REFERENCES)]
        row += [_gain(summary.get((set_name, n, tau)), codec) for n in networks]
        if paper:
            row.append(" / ".join(f"{v:.2f}" for v in paper[tau]) if tau in paper else "–")
        rows.append(row)
    return _table(header, rows)


def quality_table(summary: Summary, set_name: str, taus: Sequence[int], networks: Sequence[str]) -> list[str]:
    methods = ["codec", *networks]
    paper = PAPER_LINF.get(set_name, {})
    header = ["τ", *(f"{m} SSIM" for m in methods), *(f"{m} ℓ∞" for m in methods)]
    if paper:
        header.append("paper ℓ∞: " + " / ".join(PAPER_METHODS))
    rows = []
    for tau in taus:
        found = [summary.get((set_name, m, tau)) for m in methods]
        row = [str(tau), *("–" if r is None else f"{r['ssim']:.4f}" for r in found)]
        row += [_linf(r) for r in found]
        if paper:
            row.append(" / ".join(f"{v:g}" for v in paper[tau]) if tau in paper else "–")
        rows.append(row)
    return _table(header, rows)


def tradeoff_table(
    summary: Summary,
    set_name: str,
    taus: Sequence[int],
    network: str,
    slacks: Sequence[float],
    default: float,
) -> list[str]:
    """Gain / mean l-inf / worst l-inf per slack; kappa = 0 is the codec itself."""
    header = ["τ", "κ=0", *(f"κ={k:g}" for k in slacks)]
    rows = []
    for tau in taus:
        codec = summary.get((set_name, "codec", tau))
        if codec is None:
            continue
        cells = [f"+0.00 / {codec['linf']:.2f} / {codec['linf_worst']:g}"]
        for k in slacks:
            name = network if k == default else f"{network}@{k:g}"
            row = summary.get((set_name, name, tau))
            cells.append(
                "–"
                if row is None
                else f"{row['psnr'] - codec['psnr']:+.2f} / {row['linf']:.2f} / {row['linf_worst']:g}"
            )
        rows.append([str(tau), *cells])
    return _table(header, rows)


def report(summary: Summary, networks: Sequence[str], slacks: Sequence[float], default: float) -> str:
    sets = sorted({key[0] for key in summary})
    taus = sorted({key[2] for key in summary})
    out = []
    for set_name in sets:
        images = next(row["images"] for key, row in summary.items() if key[0] == set_name)
        out += [f"### {set_name} ({images} images)", "", f"PSNR (dB); networks at κ = {default:g}:", ""]
        out += psnr_table(summary, set_name, taus, networks)
        out += ["", "SSIM and ℓ∞ (mean of per-image max error, worst image in parentheses):", ""]
        out += quality_table(summary, set_name, taus, networks)
        for network in networks:
            out += ["", f"{network}: gain (dB) / mean ℓ∞ / worst ℓ∞ per slack κ:", ""]
            out += tradeoff_table(summary, set_name, taus, network, slacks, default)
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, help="results.json written by evaluate.py")
    parser.add_argument("--networks", default="linf", help="comma-separated network names of the run")
    parser.add_argument(
        "--slacks", default="0.25,0.5,1", help="slacks the run evaluated (default one included)"
    )
    parser.add_argument("--default_slack", type=float, default=0.5, help="slack of the plain NAME column")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    args = parser.parse_args(argv)
    text = report(
        load_summary(args.results),
        [n for n in args.networks.split(",") if n],
        [float(k) for k in args.slacks.split(",")],
        args.default_slack,
    )
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
