"""Condense a codec_bench summary.json into the Markdown ratio table used in BUILD_NOTES.md.

    python benchmarks/bench_table.py out/codec_bench/summary.json
"""

import json
import sys
from pathlib import Path

TARGETS = {  # class -> (tau -> max allowed linf/JPEG-LS bits ratio), from the codec issue
    "gray 8-bit (luma of colour)": lambda tau: 0.96 if tau == 0 else 0.93 if tau <= 3 else 0.88,
    "gray 8-bit": lambda tau: 0.96 if tau == 0 else 0.93 if tau <= 3 else 0.88,
    "colour 8-bit": lambda tau: 0.80,
    "high-bit": lambda tau: 1.0,
}


def main(path: str) -> None:
    summary = json.loads(Path(path).read_text())
    for name, by_tau in summary["classes"].items():
        first = next(iter(by_tau.values()))
        print(f"\n**{name}** ({first['linf']['images']} images)\n")
        print("| τ | linf bps | JPEG-LS bps | ratio | target | met "
              "| enc MB/s (× CharLS) | dec MB/s (× CharLS) |")
        print("|---:|---:|---:|---:|---:|:-:|---:|---:|")
        for tau, codecs in sorted(by_tau.items(), key=lambda item: int(item[0])):
            linf, jls = codecs["linf"], codecs["jpegls"]
            ratio = linf["mean_bits_per_sample"] / jls["mean_bits_per_sample"]
            target = TARGETS.get(name, lambda t: float("nan"))(int(tau))
            met = "yes" if ratio <= target else "**no**"
            enc = f"{linf['encode_mbps']:.1f} ({linf['encode_mbps'] / jls['encode_mbps']:.2f})"
            dec = f"{linf['decode_mbps']:.1f} ({linf['decode_mbps'] / jls['decode_mbps']:.2f})"
            print(f"| {tau} | {linf['mean_bits_per_sample']:.3f} | {jls['mean_bits_per_sample']:.3f} | "
                  f"{ratio:.3f} | ≤ {target:.2f} | {met} | {enc} | {dec} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/codec_bench/summary.json")
