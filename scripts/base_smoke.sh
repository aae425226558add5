#!/usr/bin/env bash
# The base package alone: a fresh virtual environment with `pip install .` (no extras, pinned by
# setup.py) must compress, decompress --restore, restore and show info with the shipped LiteRT model,
# print nothing on stderr, and never import TensorFlow (it is not even installed there).
#   bash scripts/base_smoke.sh            # PYTHON=python3, venv in /tmp/linf_base_venv
#   BASE_SMOKE_REUSE=1 bash scripts/base_smoke.sh   # keep an existing venv (no reinstall)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-python3}
VENV=${BASE_VENV:-/tmp/linf_base_venv}
WORK=$(mktemp -d /tmp/linf_base_smoke.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if [ "${BASE_SMOKE_REUSE:-0}" = 1 ] && [ -x "$VENV/bin/linf" ]; then
    echo "base smoke: reusing $VENV"
else
    echo "base smoke: fresh venv $VENV, pip install . (base only)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$REPO"
fi

cd "$WORK"  # outside the repository: the installed package is what runs
PY="$VENV/bin/python"
LINF="$VENV/bin/linf"
"$PY" - <<'PYEOF'
import importlib.util
import sys

import numpy as np
import skimage.data

import linf_tf
import linf_tf.codec
from linf_tf.imageio import write_image

assert importlib.util.find_spec("tensorflow") is None, "the base install must not pull in TensorFlow"
assert "site-packages" in linf_tf.__file__, linf_tf.__file__
write_image("a.png", np.ascontiguousarray(skimage.data.astronaut()[:256, :320]))
assert "tensorflow" not in sys.modules
PYEOF

run() {  # a linf command whose stderr must stay empty
    "$LINF" "$@" 2>stderr.txt >/dev/null
    if [ -s stderr.txt ]; then echo "unexpected stderr from linf $*:" >&2; cat stderr.txt >&2; exit 1; fi
}
run compress a.png -t 6 -o a.nlc
run decompress a.nlc -o d.png
run decompress a.nlc --restore -o r.png
run restore d.png -t 6 -o r2.png
"$LINF" info a.nlc >info.txt
grep "tau" info.txt >/dev/null

"$PY" - <<'PYEOF'
import sys

import numpy as np

from linf_tf.cli import main
from linf_tf.imageio import read_image

original, decoded = read_image("a.png").pixels.astype(int), read_image("d.png").pixels.astype(int)
for name in ("r.png", "r2.png"):
    restored = read_image(name).pixels.astype(int)
    assert np.abs(restored - original).max() <= 9 and np.abs(restored - decoded).max() <= 3, name
    assert (restored != decoded).any(), f"{name}: the network changed nothing"
assert main(["decompress", "a.nlc", "--restore", "-o", "r3.png"]) == 0
assert "tensorflow" not in sys.modules, "restoration imported TensorFlow"
print("base smoke: codec + LiteRT restore OK, tensorflow not installed and not imported")
PYEOF
