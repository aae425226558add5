"""The package's layers: codec and runtime import nothing from learn or evaluation (nor TensorFlow),
and `linf decompress --restore` runs on LiteRT alone, without native log lines.

Each check runs in a fresh interpreter, so modules imported by other tests cannot hide a dependency.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from linf_tf import codec
from linf_tf.imageio import write_image

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "keras", "linf_tf.learn", "linf_tf.evaluation", "absl", "matplotlib", "tensorboard")
CODEC_LAYER = (
    "linf_tf", "linf_tf.codec", "linf_tf.imageio", "linf_tf.image_formats", "linf_tf.image_samples",
    "linf_tf.sidecar", "linf_tf.progress", "linf_tf.pixels", "linf_tf.quiet",
    "linf_tf.cli", "linf_tf.cli.parser", "linf_tf.cli.common", "linf_tf.cli.batch", "linf_tf.cli.compress",
    "linf_tf.cli.decompress", "linf_tf.cli.restore", "linf_tf.cli.info",
)
RUNTIME_LAYER = (
    "linf_tf.runtime", "linf_tf.runtime.litert", "linf_tf.runtime.registry", "linf_tf.runtime.tiling",
    "linf_tf.runtime.box", "linf_tf.runtime.restorer", "linf_tf.runtime.intnet", "linf_tf.runtime.verified",
)


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def _loaded_after(modules: tuple[str, ...], extra: str = "") -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        f"{extra}\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _heavy(loaded: list[str]) -> list[str]:
    return [name for name in loaded if name.split(".")[0] in HEAVY or name.startswith(HEAVY)]


@pytest.mark.parametrize("layer", [CODEC_LAYER, RUNTIME_LAYER], ids=["codec", "runtime"])
def test_codec_and_runtime_import_nothing_from_learn_or_evaluation(layer: tuple[str, ...]) -> None:
    assert _heavy(_loaded_after(layer)) == []


def test_default_restoration_runs_without_tensorflow() -> None:
    restore = (
        "import numpy as np, skimage.data\n"
        "from linf_tf import codec\n"
        "from linf_tf.runtime import NetworkRestorer\n"
        "image = np.ascontiguousarray(skimage.data.astronaut()[:64, :80])\n"
        "decoded = codec.decode(codec.encode(image, 6))\n"
        "restored = NetworkRestorer('default').restore(decoded, 6, 0.5, 8)\n"
        "assert np.abs(restored.astype(int) - decoded.astype(int)).max() <= 3\n"
        "gray = codec.decode(codec.encode(np.ascontiguousarray(image[..., 0]), 6))\n"
        "assert NetworkRestorer('default').restore(gray, 6, 0.5, 8).shape == gray.shape\n"
    )
    assert _heavy(_loaded_after(("linf_tf",), restore)) == []


def test_learn_and_evaluation_import_alone() -> None:
    loaded = _loaded_after((
        "linf_tf.learn.trainer", "linf_tf.learn.export", "linf_tf.learn.serving", "linf_tf.learn.tflite",
        "linf_tf.learn.calibration", "linf_tf.learn.parity", "linf_tf.learn.sources", "linf_tf.learn.patches",
        "linf_tf.learn.data", "linf_tf.learn.checkpoints", "linf_tf.learn.networks",
        "linf_tf.evaluation.evaluate",
    ))
    assert "tensorflow" in loaded


def test_cli_restore_prints_no_native_log_lines(tmp_path: Path) -> None:
    image = np.ascontiguousarray(skimage.data.astronaut()[:96, :128])
    write_image(tmp_path / "a.png", image)
    (tmp_path / "a.nlc").write_bytes(codec.encode(image, 6))
    commands = [
        ["decompress", str(tmp_path / "a.nlc"), "--restore", "-o", str(tmp_path / "r.png")],
        ["restore", str(tmp_path / "a.png"), "-t", "6", "-o", str(tmp_path / "r2.png")],
    ]
    for command in commands:
        code = (
            "import sys\nfrom linf_tf.cli import main\n"
            f"rc = main({command!r})\n"
            "assert 'tensorflow' not in sys.modules\nsys.exit(rc)\n"
        )
        result = _python(code)
        assert result.returncode == 0, result.stderr
        assert result.stderr == "", result.stderr  # no XNNPACK / TensorFlow / absl lines
