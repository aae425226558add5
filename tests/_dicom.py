"""Minimal DICOM files for the tests (pydicom writes them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    bits_stored: int,
    syntax: str = ExplicitVRLittleEndian,
    pixel_data: bytes | None = None,
) -> None:
    """A single-sample DICOM file; pixels is HxW, or FxHxW for a multi-frame file.

    int16 pixels are written as signed (PixelRepresentation 1), uint16 as unsigned.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # secondary capture
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Rows, dataset.Columns = pixels.shape[-2:]
    if pixels.ndim == 3:
        dataset.NumberOfFrames = pixels.shape[0]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, bits_stored, bits_stored - 1
    dataset.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    dataset.PixelData = pixel_data if pixel_data is not None else pixels.tobytes()
    if pixel_data is not None:
        dataset["PixelData"].VR = "OB"
    dataset.save_as(path, enforce_file_format=True)
