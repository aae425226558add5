"""Real 12/16-bit microscopy TIFFs and DICOM files round-trip within tau (reads ../shared/data).

The data is not part of the repository: every test skips, with a reason, when the folder is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linf_tf import codec
from linf_tf.imageio import read_image

HIGHBIT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "highbit"

pytestmark = pytest.mark.skipif(
    not HIGHBIT.is_dir(), reason=f"shared image data not present at {HIGHBIT} (only on dev machines)"
)

# A few small files covering: 12-bit range, 2-channel, z-stack, 12-bit and signed DICOM, J2K-in-DICOM.
MICROSCOPY = [
    "neubias/xy_12bit__saturated_plant.tif",
    "neubias/xyc_16bit__nuclei_golgi.tif",
    "neubias/xyz_16bit__spots.tif",
]
DICOM = [
    "dicom/MR-SIEMENS-DICOM-WithOverlays.dcm",  # 12 bits stored
    "dicom/CT_small.dcm",  # signed, no negative values
    "dicom/693_UNCR.dcm",  # signed 14-bit CT with negative values: needs the offset
    "dicom/explicit_VR-UN.dcm",  # JPEG 2000 lossless inside DICOM
]


def _read(relative: str):
    path = HIGHBIT / relative
    if not path.is_file():
        pytest.skip(f"{path} not present")
    try:
        return read_image(path, allow_signed=True)
    except ValueError as exc:
        if "install one of" in str(exc):  # no pydicom pixel-data plugin for this transfer syntax
            pytest.skip(str(exc))
        raise


@pytest.mark.parametrize("tau", [0, 3])
@pytest.mark.parametrize("relative", MICROSCOPY + DICOM)
def test_round_trip_within_tau(relative: str, tau: int) -> None:
    image = _read(relative)
    assert image.pixels.dtype == np.uint16
    stream = codec.encode(image.pixels, tau, bit_depth=image.bit_depth)
    header = codec.info(stream)
    assert (header.tau, header.bit_depth, header.shape) == (tau, image.bit_depth, image.pixels.shape)
    decoded = codec.decode(stream)
    error = np.abs(decoded.astype(np.int32) - image.pixels.astype(np.int32))
    assert int(error.max()) <= tau
    if tau == 0:
        np.testing.assert_array_equal(decoded, image.pixels)
    else:
        assert header.bits_per_sample < 16


def test_stack_and_dicom_metadata() -> None:
    spots = _read("neubias/xyz_16bit__spots.tif")
    assert spots.pixels.shape == (88, 89, 17)  # ZYX z-stack folded into 17 channels
    mr = _read("dicom/MR-SIEMENS-DICOM-WithOverlays.dcm")
    assert mr.bit_depth == 12 and int(mr.pixels.max()) < 4096
    ct = _read("dicom/693_UNCR.dcm")
    assert ct.offset == 1 << 13 and ct.bit_depth == 14


def _all_highbit_files() -> list[Path]:
    if not HIGHBIT.is_dir():
        return []
    return sorted(path for path in HIGHBIT.rglob("*") if path.suffix.lower() in {".tif", ".png", ".dcm"})


@pytest.mark.slow
@pytest.mark.parametrize("path", _all_highbit_files(), ids=lambda path: path.name)
def test_every_highbit_file_within_tau(path: Path) -> None:
    image = _read(str(path.relative_to(HIGHBIT)))
    for tau in (0, 3):
        decoded = codec.decode(codec.encode(image.pixels, tau, bit_depth=image.bit_depth))
        assert int(np.abs(decoded.astype(np.int32) - image.pixels.astype(np.int32)).max()) <= tau
