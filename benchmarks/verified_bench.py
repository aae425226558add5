"""Encoder-verified restoration (format 5) against the plain codec and a uniform box, per set.

For every image, mode (gray = BT.601 luma, rgb) and tau: the plain codec; the same integer network
with the uniform box floor(slack*tau) (the only *guaranteed* option at the same bound without side
information); the unverified network in the full box tau (bound 2 tau, for reference); and the
verified stream for each block size (auto included). All restorations at the guaranteed bound
tau + floor(slack*tau) are checked sample by sample. Then a timing of encode and decode, plain and
verified, on a central crop (default 512 x 512), median of ``--repeats``.

    .venv/bin/python benchmarks/verified_bench.py --output-dir out/verified_bench

Writes ``rows.csv`` (one row per image, mode, tau, method), ``summary.json`` and ``summary.md``.
Without ``../shared/data/eval`` it runs on images bundled with scikit-image.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from collections import defaultdict
from functools import cache, partial
from pathlib import Path

import numpy as np
import skimage.data
from tqdm import tqdm

from linf_tf import codec
from linf_tf.imageio import read_image
from linf_tf.pixels import LUMA_WEIGHTS
from linf_tf.runtime import NetworkRestorer, verified

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"
SETS = ("set14", "bsd100", "mcmaster")
FALLBACK = ("astronaut", "coffee", "chelsea", "rocket")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def to_mode(pixels: np.ndarray, mode: str) -> np.ndarray:
    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, axis=2)
    rgb = rgb[..., :3]
    if mode == "rgb":
        return np.ascontiguousarray(rgb)
    return np.clip(np.rint(rgb @ LUMA_WEIGHTS), 0, 255).astype(np.uint8)


def images(set_names: list[str], limit: int) -> list[tuple[str, str, np.ndarray]]:
    found = []
    for name in set_names:
        folder = EVAL / name
        paths = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".png", ".bmp", ".tif", ".jpg"))
        found += [(name, p.stem, read_image(p).pixels) for p in paths[: limit or None]]
    if not found:
        found = [("skimage", n, getattr(skimage.data, n)()) for n in FALLBACK]
    return found


def level_family(name: str, tau: int, safe: int) -> list[tuple[int, int]] | None:
    """The level sets compared in BUILD_NOTES (None: the encoder's default, ``slack_levels``)."""
    families = {
        "default": None,
        # box only: the full correction in boxes from the safe one up to tau
        "box": [(0, 0), (4, safe), (4, tau // 2), (4, 3 * tau // 4), (4, tau)],
        # box only, wider: up to 2 tau
        "box_wide": [(0, 0), (4, safe), (4, tau // 2), (4, tau), (4, 3 * tau // 2), (4, 2 * tau)],
        # scaled only, in the box tau
        "scaled_tau": [(0, 0), (4, safe), (2, tau), (4, tau), (6, tau), (8, tau)],
    }
    chosen = families[name]
    if chosen is None:
        return None
    return list(dict.fromkeys((0, 0) if q == 0 or w == 0 else (q, w) for q, w in chosen))


@cache
def float_restorer() -> NetworkRestorer:
    return NetworkRestorer()


def evaluate_image(
    x: np.ndarray,
    tau: int,
    slack: float,
    blocks: list[str],
    levels: str = "default",
    float_reference: bool = False,
) -> list[dict]:
    plain, y = codec.encode_with_decoded(x, tau)
    y = y.reshape(x.shape)
    net = verified.integer_model_for(1 if x.ndim == 2 else x.shape[2])
    correction = verified.network_correction(net, y, tau, 255)
    bound = tau + verified._check_slack(slack) * tau // 1000  # the encoder's rounding (down)
    samples = x.size
    base = {"bits_per_sample": 8 * len(plain) / samples, "side_fraction": 0.0, "block": ""}
    rows = [dict(base, method="plain", psnr=psnr(x, y), linf=int(np.abs(y.astype(int) - x).max()), bound=tau)]
    shaped = y.reshape(correction.shape).astype(np.int64)
    for name, box, row_bound in (("uniform", bound - tau, bound), ("network_tau_box", tau, 2 * tau)):
        out = np.clip(shaped + np.clip(correction, -box, box), 0, 255).reshape(x.shape)
        rows.append(
            dict(
                base,
                method=name,
                psnr=psnr(x, out),
                linf=int(np.abs(out - x.astype(int)).max()),
                bound=row_bound,
            )
        )
    if float_reference:
        # The shipped LiteRT float16 model in the same box tau: what the integer network costs.
        out = float_restorer().restore(y, tau, 1.0, 8)
        rows.append(
            dict(
                base,
                method="litert_float_tau_box",
                psnr=psnr(x, out),
                linf=int(np.abs(out - x.astype(int)).max()),
                bound=2 * tau,
            )
        )
    for block in blocks:
        plan = verified.plan_restoration(
            x,
            tau,
            slack,
            block="auto" if block == "auto" else int(block),
            correction=correction,
            levels=level_family(levels, tau, bound - tau),
        )
        linf = int(np.abs(plan.restored.astype(int) - x).max())
        if linf > bound:
            raise AssertionError(f"verified restoration broke its bound: {linf} > {bound}")
        rows.append(
            {
                "method": f"verified_{block}",
                "psnr": psnr(x, plan.restored),
                "linf": linf,
                "bound": bound,
                "bits_per_sample": 8 * len(plan.stream) / samples,
                "block": plan.header.block,
                "side_fraction": plan.header.side_bytes / len(plan.stream),
            }
        )
    for row in rows:
        row["gain"] = row["psnr"] - rows[0]["psnr"]
    return rows


def median_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timing(pixels: np.ndarray, size: int, repeats: int, slack: float) -> list[dict]:
    height, width = pixels.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    results = []
    for mode in ("gray", "rgb"):
        crop = np.ascontiguousarray(to_mode(pixels, mode)[top : top + size, left : left + size])
        plain = codec.encode(crop, 10)
        stream = verified.encode(crop, 10, slack)
        row = {
            "mode": mode,
            "shape": "x".join(map(str, crop.shape)),
            "plain_encode_s": median_time(partial(codec.encode, crop, 10), repeats),
            "verified_encode_s": median_time(partial(verified.encode, crop, 10, slack), repeats),
            "plain_decode_s": median_time(partial(codec.decode, plain), repeats),
            "verified_decode_s": median_time(partial(verified.decode, stream), repeats),
        }
        row["encode_ratio"] = row["verified_encode_s"] / row["plain_encode_s"]
        results.append(row)
    return results


def summarise(rows: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for row in rows:
        groups[(row["set"], row["mode"], row["tau"], row["method"])].append(row)
        # The targets are over the three sets together: every image counts once.
        groups[("all", row["mode"], row["tau"], row["method"])].append(row)
    summary = []
    for (set_name, mode, tau, method), items in sorted(groups.items()):
        summary.append(
            {
                "set": set_name,
                "mode": mode,
                "tau": tau,
                "method": method,
                "images": len(items),
                "psnr": statistics.fmean(r["psnr"] for r in items),
                "gain": statistics.fmean(r["gain"] for r in items),
                "max_linf": max(r["linf"] for r in items),
                "bound": items[0]["bound"],
                "bits_per_sample": statistics.fmean(r["bits_per_sample"] for r in items),
                "side_fraction": statistics.fmean(r["side_fraction"] for r in items),
                "blocks": sorted({str(r["block"]) for r in items if r["block"] != ""}),
            }
        )
    return summary


def markdown(summary: list[dict], timings: list[dict]) -> str:
    lines = [
        "| set | mode | tau | method | bound | max ℓ∞ | PSNR | gain | bits/sample | side info |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        side = f"{100 * s['side_fraction']:.2f} %" if s["side_fraction"] else ""
        lines.append(
            f"| {s['set']} | {s['mode']} | {s['tau']} | {s['method']} | {s['bound']} | {s['max_linf']} | "
            f"{s['psnr']:.2f} | {s['gain']:+.2f} | {s['bits_per_sample']:.4f} | {side} |"
        )
    if timings:
        lines += [
            "",
            "| mode | crop | plain encode | verified encode | ratio | plain decode | verified decode |",
            "|---|---|---|---|---|---|---|",
        ]
        for t in timings:
            lines.append(
                f"| {t['mode']} | {t['shape']} | {t['plain_encode_s']:.3f} s "
                f"| {t['verified_encode_s']:.2f} s | {t['encode_ratio']:.1f}x "
                f"| {t['plain_decode_s']:.3f} s | {t['verified_decode_s']:.2f} s |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sets", default=",".join(SETS), help="sets under ../shared/data/eval (comma-separated)"
    )
    parser.add_argument("--modes", default="gray,rgb", help="gray (luma) and/or rgb")
    parser.add_argument("--taus", default="6,10,14", help="codec taus")
    parser.add_argument("--slack", type=float, default=0.25, help="guaranteed bound tau + floor(slack*tau)")
    parser.add_argument("--blocks", default="8,16,32,auto", help="level-map block sizes to compare")
    parser.add_argument("--limit", type=int, default=0, help="first N images per set (0 = all)")
    parser.add_argument("--timing-size", type=int, default=512, help="crop side for the timing (0 = none)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument("--output-dir", type=Path, default=Path("out/verified_bench"))
    parser.add_argument(
        "--levels",
        default="default",
        choices=["default", "box", "box_wide", "scaled_tau"],
        help="level set offered per block (default: the encoder's; others for the ablation)",
    )
    parser.add_argument(
        "--float-reference",
        action="store_true",
        help="also the shipped LiteRT (float) model in the box tau, beside the integer network's row",
    )
    parser.add_argument("--timing-only", action="store_true", help="only the encode/decode timing")
    args = parser.parse_args(argv)
    found = [] if args.timing_only else images(args.sets.split(","), args.limit)
    taus = [int(t) for t in args.taus.split(",")]
    modes, blocks = args.modes.split(","), args.blocks.split(",")
    rows: list[dict] = []
    for set_name, name, pixels in tqdm(found, desc="images", unit="image"):
        for mode in modes:
            x = to_mode(pixels, mode)
            for tau in taus:
                for row in evaluate_image(x, tau, args.slack, blocks, args.levels, args.float_reference):
                    rows.append({"set": set_name, "image": name, "mode": mode, "tau": tau, **row})
    # The timing image is the 512 x 512 astronaut of scikit-image: the same everywhere.
    timings = []
    if args.timing_size:
        timings = timing(skimage.data.astronaut(), args.timing_size, args.repeats, args.slack)
    if args.timing_only:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "timing.json").write_text(json.dumps(timings, indent=1))
        print(markdown([], timings))
        return 0
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with open(args.output_dir / "rows.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(rows)
    (args.output_dir / "summary.json").write_text(
        json.dumps({"summary": summary, "timing": timings}, indent=1)
    )
    text = markdown(summary, timings)
    (args.output_dir / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
