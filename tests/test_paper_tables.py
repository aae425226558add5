"""linf_tf.evaluation.paper_tables (command line: benchmarks/paper_tables.py): the README tables built
from an evaluate.py summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from linf_tf.evaluation import paper_tables

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "paper_tables.py"


def row(set_name: str, method: str, tau: int, psnr: float, linf: float, worst: float) -> dict:
    return dict(
        set=set_name, method=method, tau=tau, images=3, psnr=psnr, ssim=0.9, linf=linf, linf_worst=worst
    )


def summary_rows() -> list[dict]:
    rows = []
    for set_name in ("set14", "mcmaster"):
        for tau in (2, 6):
            rows += [
                row(set_name, "codec", tau, 30.0, tau, tau),
                row(set_name, "jpeg2000", tau, 33.0, 20.0, 25.0),
                row(set_name, "net", tau, 32.5, 1.4 * tau, 1.5 * tau),
                row(set_name, "net@1", tau, 32.75, 1.8 * tau, 2 * tau),
            ]
    return rows


def test_gain_paper_columns_and_tradeoff(tmp_path: Path) -> None:
    summary = {(r["set"], r["method"], r["tau"]): r for r in summary_rows()}
    text = paper_tables.report(summary, ["net"], [0.5, 1.0], 0.5)
    set14, mcmaster = text.split("### set14")[1], text.split("### mcmaster")[1].split("### set14")[0]
    assert "| 6 | 30.00 | – | 33.00 | – | 32.50 (+2.50) | 37.15 / 39.05 / 39.20 / 38.41 / 37.95 |" in set14
    assert "| 2 | 30.00 | – | 33.00 | – | 32.50 (+2.50) | – |" in set14  # the paper has no tau = 2
    assert "paper" not in mcmaster  # nor McMaster
    assert "| 6 | +0.00 / 6.00 / 6 | +2.50 / 8.40 / 9 | +2.75 / 10.80 / 12 |" in set14


def test_script_writes_the_markdown(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"summary": summary_rows(), "records": []}))
    out = tmp_path / "tables.md"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(tmp_path / "results.json"),
            "--networks=net",
            "--slacks=0.5,1",
            f"--output={out}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == out.read_text() + "\n" and "### mcmaster (3 images)" in result.stdout
