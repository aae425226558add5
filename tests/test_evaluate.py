"""Evaluation: rate matching, records, aggregation, writers and evaluate.py end to end (restorers and
tiling: test_runtime.py). Tiny crops of skimage.data and tiny untrained (randomised) generators."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from _tiny_models import TINY_RADIUS, gray_crop, rgb_crop, save_tiny_keras, tiny_generator
from skimage import data

from linf_tf import codec, imageio
from linf_tf.evaluation import evaluate as evaluate_lib
from linf_tf.evaluation.evaluate import KerasRestorer, Record

REPO = Path(__file__).resolve().parents[1]
@pytest.fixture(scope="module")
def gray_model():
    return tiny_generator(1)


@pytest.fixture(scope="module")
def rgb_model():
    return tiny_generator(3, seed=1)


# --- metrics of the methods ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["jpeg2000", "webp"])
def test_rate_matching_hits_two_percent_on_a_real_image(method: str) -> None:
    image = np.ascontiguousarray(data.astronaut()[:256, :256])
    target = len(codec.encode(image, 8))
    match = (
        evaluate_lib.rate_matched_jpeg2000(image, target)
        if method == "jpeg2000"
        else evaluate_lib.rate_matched_webp(image, target)
    )
    assert match.within_tolerance
    assert abs(len(match.data) - target) <= 0.02 * target
    assert match.decoded.shape == image.shape and match.decoded.dtype == np.uint8


@pytest.mark.parametrize("tau", [6, 14])
def test_rate_matching_on_a_tiny_image_returns_the_closest_achievable_size(tau: int) -> None:
    # OpenJPEG truncates at coding-pass boundaries, so on tiny images its size is a coarse staircase
    # of the level that may skip the 2 % window; then the search must report the miss, and no level of
    # a fine scan may come closer than what it returned.
    image = rgb_crop()
    target = len(codec.encode(image, tau))
    match = evaluate_lib.rate_matched_jpeg2000(image, target)
    error = abs(len(match.data) - target) / target
    assert match.within_tolerance == (error <= 0.02)
    if not match.within_tolerance:
        levels = np.arange(1, 109, 0.25)
        scanned = [len(imagecodecs.jpeg2k_encode(image, level=lv, bitspersample=8)) for lv in levels]
        assert error <= min(abs(size - target) / target for size in scanned) + 1e-9


def test_webp_is_skipped_for_16_bit_data() -> None:
    image = gray_crop().astype(np.uint16) * 257
    assert evaluate_lib.rate_matched_webp(image, 1000) is None
    outputs = evaluate_lib.method_outputs(image, 16, 200, {}, (), 0.5)
    assert set(outputs) == {"codec", "jpeg2000", "jpegls"}
    assert evaluate_lib.metrics.linf_error(image, outputs["jpegls"].image) <= 200
    assert evaluate_lib.jpegls(image, 300) is None  # CharLS caps NEAR at 255


def test_webp_gray_image_comes_back_gray() -> None:
    image = gray_crop()
    match = evaluate_lib.rate_matched_webp(image, len(codec.encode(image, 10)))
    assert match.decoded.shape == image.shape


# --- records and aggregation --------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_image_set(tmp_path_factory) -> dict[str, list[Path]]:
    directory = tmp_path_factory.mktemp("set")
    imageio.write_image(directory / "a_gray.png", gray_crop())
    imageio.write_image(directory / "b_rgb.png", rgb_crop())
    return {"tiny": sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def records(two_image_set, gray_model) -> list[Record]:
    models = {"net": KerasRestorer(gray_model)}
    return evaluate_lib.evaluate(
        two_image_set,
        [4, 10],
        models,
        (0.25, 0.5, 1.0),
        default_slack=0.5,
        tile=32,
        overlap=TINY_RADIUS,
        progress=False,
    )


def test_records_cover_every_method_image_and_tau(records) -> None:
    methods = {"codec", "jpeg2000", "webp", "jpegls", "net", "net@0.25", "net@1"}
    assert {r.method for r in records} == methods
    assert len(records) == len(methods) * 2 * 2
    assert {(r.image, r.tau) for r in records} == {
        (i, t) for i in ("a_gray.png", "b_rgb.png") for t in (4, 10)
    }


def test_codec_and_jpegls_keep_the_bound(records) -> None:
    for record in records:
        if record.method in ("codec", "jpegls"):
            assert 0 < record.linf <= record.tau
            assert record.bound == record.tau


@pytest.mark.parametrize(("method", "slack"), [("net", 0.5), ("net@0.25", 0.25), ("net@1", 1.0)])
def test_model_keeps_linf_within_one_plus_slack_tau(records, method: str, slack: float) -> None:
    chosen = [r for r in records if r.method == method]
    codec_rows = {(r.image, r.tau): r for r in records if r.method == "codec"}
    for record in chosen:
        assert record.linf <= (1 + slack) * record.tau
        assert record.bound == pytest.approx((1 + slack) * record.tau)
        assert record.bpp == codec_rows[(record.image, record.tau)].bpp  # same stream, same rate
    # the randomised network really moves pixels, so the bound is exercised, not trivially met
    assert any(r.psnr != codec_rows[(r.image, r.tau)].psnr for r in chosen)


def test_rate_matched_records_say_whether_they_matched(records) -> None:
    for record in records:
        if record.method in ("jpeg2000", "webp"):
            assert isinstance(record.rate_matched, bool) and record.bound is None
        else:
            assert record.rate_matched is None


def test_aggregation_means_and_worst_case() -> None:
    rows = [
        Record("s", "codec", 6, "a", 30.0, 0.9, 4.0, 2.0, bound=6.0),
        Record("s", "codec", 6, "b", 40.0, 0.7, 6.0, 3.0, bound=6.0),
        Record("s", "webp", 6, "a", 35.0, 0.8, 20.0, 2.5, rate_matched=True),
        Record("s", "webp", 6, "b", 33.0, 0.6, 11.0, 2.5, rate_matched=False),
    ]
    summary = {row["method"]: row for row in evaluate_lib.aggregate(rows)}
    assert summary["codec"]["psnr"] == pytest.approx(35.0)
    assert summary["codec"]["ssim"] == pytest.approx(0.8)
    assert summary["codec"]["bpp"] == pytest.approx(2.5)
    assert summary["codec"]["linf"] == pytest.approx(5.0)
    assert summary["codec"]["linf_worst"] == 6.0
    assert summary["webp"]["linf_worst"] == 20.0
    assert summary["webp"]["rate_matched_fraction"] == 0.5
    assert summary["codec"]["images"] == 2


def test_markdown_table_is_laid_out_like_table_2(records) -> None:
    table = evaluate_lib.markdown_tables(evaluate_lib.aggregate(records))
    header = next(line for line in table.splitlines() if line.startswith("| τ |"))
    assert header == "| τ | Measure | codec | jpeg2000 | webp | jpegls | net | net@0.25 | net@1 |"
    for tau in (4, 10):
        assert f"| τ={tau} | PSNR |" in table
    assert table.count("| SSIM |") == 2 and table.count("| ℓ∞ bound |") == 2


def test_json_writer_handles_lossless_psnr(tmp_path: Path) -> None:
    rows = [Record("s", "codec", 0, "a", math.inf, 1.0, 0.0, 4.0, bound=0.0)]
    evaluate_lib.write_json(rows, evaluate_lib.aggregate(rows), tmp_path / "r.json")
    loaded = json.loads((tmp_path / "r.json").read_text())
    assert loaded["records"][0]["psnr"] is None and loaded["summary"][0]["linf_worst"] == 0.0


def test_missing_or_empty_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate_lib.list_images(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no readable images"):
        evaluate_lib.list_images(tmp_path)


# --- evaluate.py end to end ---------------------------------------------------------------------


def run_evaluate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "evaluate.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_evaluate_script_end_to_end(tmp_path: Path, two_image_set, gray_model) -> None:
    weights = save_tiny_keras(gray_model, tmp_path)
    out = tmp_path / "out"
    result = run_evaluate(
        f"--data_dir={two_image_set['tiny'][0].parent}",
        "--taus=4,8",
        f"--models=net={weights}",
        "--slacks=0.25,1",
        f"--output_dir={out}",
        "--limit=2",
        "--tile=40",
        "--noprogress",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert {row["method"] for row in summary} >= {
        "codec",
        "jpeg2000",
        "webp",
        "jpegls",
        "net",
        "net@0.25",
        "net@1",
    }
    assert (out / "results.csv").read_text().count("\n") == 1 + 7 * 2 * 2
    assert "| τ=8 | PSNR |" in (out / "results.md").read_text()
    set_name = two_image_set["tiny"][0].parent.name
    for kind in ("psnr_vs_tau", "linf_vs_tau", "psnr_vs_bpp", "tradeoff", "linf_frontier", "crops"):
        png = out / "plots" / f"{set_name}_{kind}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


def test_evaluate_script_adds_a_model_to_an_earlier_run(
    tmp_path: Path, two_image_set, gray_model, records
) -> None:
    """--references= skips the reference codecs and --merge brings in an earlier run's records."""
    directory = two_image_set["tiny"][0].parent  # evaluate.py names the set after its directory
    earlier = [
        dataclasses.replace(r, set=directory.name)
        for r in records
        if r.method in ("jpeg2000", "webp", "jpegls", "codec")
    ]
    evaluate_lib.write_json(earlier, evaluate_lib.aggregate(earlier), tmp_path / "earlier.json")
    weights = save_tiny_keras(gray_model, tmp_path)
    out = tmp_path / "out"
    result = run_evaluate(
        f"--data_dir={directory}",
        "--taus=4,10",
        f"--models=new={weights}",
        "--slacks=1",
        "--references=",
        f"--merge={tmp_path / 'earlier.json'}",
        f"--output_dir={out}",
        "--tile=40",
        "--noprogress",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    merged = evaluate_lib.read_records(out / "results.json")
    methods = {r.method for r in merged}
    assert methods == {"codec", "jpeg2000", "webp", "jpegls", "new", "new@1"}
    assert len(merged) == len(methods) * 2 * 2  # the codec rows were redone, not doubled
    jpeg2000_before = {(r.image, r.tau): r.psnr for r in earlier if r.method == "jpeg2000"}
    assert {(r.image, r.tau): r.psnr for r in merged if r.method == "jpeg2000"} == jpeg2000_before


def test_reference_codecs_can_be_skipped(two_image_set) -> None:
    only_codec = evaluate_lib.evaluate(two_image_set, [4], {}, progress=False, references=("jpegls",))
    assert {r.method for r in only_codec} == {"codec", "jpegls"}
    with pytest.raises(ValueError, match="unknown reference codecs"):
        evaluate_lib.evaluate(two_image_set, [4], {}, progress=False, references=("jpegxl",))


def test_read_records_round_trips_and_rejects_other_files(tmp_path: Path) -> None:
    rows = [Record("s", "codec", 0, "a", math.inf, 1.0, 0.0, 4.0, bound=0.0)]
    evaluate_lib.write_json(rows, evaluate_lib.aggregate(rows), tmp_path / "r.json")
    assert evaluate_lib.read_records(tmp_path / "r.json") == rows
    (tmp_path / "bad.json").write_text('{"summary": []}')
    with pytest.raises(ValueError, match="not an evaluate.py results.json"):
        evaluate_lib.read_records(tmp_path / "bad.json")


def test_evaluate_script_rejects_an_empty_data_dir(tmp_path: Path) -> None:
    result = run_evaluate(f"--data_dir={tmp_path}", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    assert "no readable images" in result.stderr


def test_baselines_that_cannot_code_an_image_are_skipped() -> None:
    # A 5-plane stack: the codec and JPEG 2000 take it, WebP and CharLS's JPEG-LS cannot.
    stack = np.stack([gray_crop()[:, :48]] * 5, axis=-1) // 2
    outputs = evaluate_lib.method_outputs(stack, 8, 3, {}, (), 0.5)
    assert set(outputs) == {"codec", "jpeg2000"}
    assert evaluate_lib.metrics.linf_error(stack, outputs["codec"].image) <= 3


def test_strided_colour_view_and_lossless_tau() -> None:
    view = data.astronaut()[30:94, 150:230, :]  # a non-contiguous view of a bigger array
    outputs = evaluate_lib.method_outputs(view, 8, 0, {}, (), 0.5)
    assert {"codec", "jpeg2000", "webp", "jpegls"} <= set(outputs)
    assert evaluate_lib.metrics.linf_error(view, outputs["codec"].image) == 0
    assert evaluate_lib.metrics.psnr(view, outputs["jpegls"].image, 255) == math.inf


@pytest.mark.slow
def test_paper_size_generator_tiles_exactly_with_its_receptive_radius() -> None:
    from linf_tf.learn.models import build_generator

    model = build_generator(1)  # 64 filters, 16 residual units: radius 35
    rng = np.random.default_rng(2)
    for variable in model.weights:  # small random weights: deep nets blow up with the tiny model's 0.3
        shape = tuple(variable.shape)
        scale = 0.02 if len(shape) == 4 else 0.1
        value = (
            rng.uniform(0.5, 1.5, shape)
            if "moving_variance" in variable.path
            else rng.normal(0, scale, shape)
        )
        variable.assign(value.astype(np.float32))
    restorer = KerasRestorer(model)
    assert restorer.receptive_radius == 35
    image = np.ascontiguousarray(data.camera()[100:260, 150:310])
    whole = restorer.restore(image[..., None], 20, 1.0, 8)[..., 0]
    tiled = evaluate_lib.restore_tiled(restorer, image, 20, 1.0, tile=64, overlap=35)
    assert np.abs(whole - image).max() > 1.0
    np.testing.assert_allclose(tiled, whole, atol=1e-2)


def test_markdown_marks_rates_that_were_not_matched() -> None:
    rows = [
        Record("s", "codec", 6, "a", 30.0, 0.9, 6.0, 2.0, bound=6.0),
        Record("s", "jpeg2000", 6, "a", 31.0, 0.9, 20.0, 2.2, rate_matched=False),
    ]
    table = evaluate_lib.markdown_tables(evaluate_lib.aggregate(rows))
    assert "| τ=6 | PSNR | 30.00 | 31.00* |" in table
    assert "rate not matched within 2 %" in table
    assert "| ℓ∞ bound | 6.00 (6) | 20.00 (20) |" in table


def test_line_plots_draw_references_and_default_slack_networks_only() -> None:
    """Slack variants belong to the trade-off plot: drawn in every line plot they made sixteen
    lines, and with matplotlib's ten colours recycled two methods shared a colour."""
    methods = ["net@1", "webp", "codec", "net", "other", "other@0.25", "jpegls", "jpeg2000"]
    assert evaluate_lib.line_plot_methods(methods) == ["codec", "jpeg2000", "webp", "jpegls", "net", "other"]


def test_gray_protocol_codes_the_luma_of_colour_images(two_image_set, gray_model) -> None:
    colour = two_image_set["tiny"][1]
    luma = evaluate_lib.read_test_image(colour, gray=True)
    expected = np.rint(imageio.read_image(colour).pixels.astype(np.float64) @ [0.299, 0.587, 0.114])
    assert luma.pixels.ndim == 2 and luma.pixels.dtype == np.uint8
    np.testing.assert_array_equal(luma.pixels, expected.astype(np.uint8))
    # A gray model restores every image of the set under the gray protocol, bound kept.
    gray_records = evaluate_lib.evaluate(
        two_image_set, [6], {"net": KerasRestorer(gray_model)}, progress=False, references=(), tile=32,
        overlap=TINY_RADIUS, gray=True,
    )
    nets = [r for r in gray_records if r.method == "net"]
    assert len(nets) == 2 and all(r.linf <= 6 + 3 for r in nets)
    codec_bpp = {r.image: r.bpp for r in gray_records if r.method == "codec"}
    rgb_bpp = {r.image: r.bpp for r in evaluate_lib.evaluate(two_image_set, [6], {}, progress=False,
                                                             references=()) if r.method == "codec"}
    assert codec_bpp["a_gray.png"] == rgb_bpp["a_gray.png"]
    assert codec_bpp["b_rgb.png"] != rgb_bpp["b_rgb.png"]


def test_default_model_follows_the_protocol() -> None:
    # --gray evaluates the shipped gray model; without it the RGB one (a gray run once got RGB).
    assert evaluate_lib.load_model("default", channels=1).channels == 1
    assert evaluate_lib.load_model("default").channels == 3
