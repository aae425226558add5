"""What a ``.nlc`` stream cannot say about the file it came from, kept beside it as ``NAME.nlc.json``.

``linf compress`` writes the sidecar only when there is something to restore on decompression:
    * ``axes`` / ``shape``: the file held a stack (e.g. a ZYX TIFF of shape (17, 88, 89)) that was
      folded to HxWxC = (88, 89, 17); ``linf decompress`` to a TIFF writes it back in file order.
    * ``signed`` / ``offset``: the file declared signed samples (DICOM PixelRepresentation 1, TIFF
      SampleFormat INT) and ``offset = 2**(signed_bits - 1)`` was added to every sample before
      coding (``--signed-offset``). ``linf decompress`` to a TIFF writes the signed values back
      (int8/int16). Not written when the codec stores the signed samples itself.
The stream alone still decodes (to the folded, shifted samples); the sidecar is plain JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from linf_tf.image_samples import ImageData, StackLayout

SIDECAR_SUFFIX = ".json"
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class Sidecar:
    layout: StackLayout | None = None
    signed: bool = False
    offset: int = 0
    signed_bits: int = 16  # the signed samples' range is +-2**(signed_bits - 1)

    @property
    def needed(self) -> bool:
        return self.layout is not None or self.signed

    def describe(self) -> str:
        parts = []
        if self.layout is not None:
            parts.append(f"{self.layout.axes} stack of shape {self.layout.shape}")
        if self.signed:
            parts.append(f"signed {self.signed_bits}-bit samples, stored with offset +{self.offset}")
        return "; ".join(parts)


def sidecar_path(stream_path: Path) -> Path:
    return stream_path.with_name(stream_path.name + SIDECAR_SUFFIX)


def from_image(image: ImageData) -> Sidecar:
    """What decompression needs beyond the stream to give back what ``image`` was read from."""
    # Signed samples handed to the codec as int8/int16 are recorded in the stream itself.
    stored_unsigned = image.signed and image.pixels.dtype.kind == "u"
    return Sidecar(layout=image.layout, signed=stored_unsigned, offset=image.offset,
                   signed_bits=image.bit_depth if stored_unsigned else 16)


def write_sidecar(stream_path: Path, sidecar: Sidecar, source: Path) -> Path:
    record: dict = {"linf_sidecar": SIDECAR_VERSION, "stream": stream_path.name, "source": source.name}
    if sidecar.layout is not None:
        record.update(axes=sidecar.layout.axes, shape=list(sidecar.layout.shape))
    if sidecar.signed:
        record.update(signed=True, offset=sidecar.offset, signed_bits=sidecar.signed_bits)
    path = sidecar_path(stream_path)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def read_sidecar(stream_path: Path) -> Sidecar | None:
    """The sidecar beside ``stream_path``, or None; ValueError when it is not a valid one."""
    path = sidecar_path(stream_path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("linf_sidecar") != SIDECAR_VERSION:
            raise ValueError(f"unknown sidecar version {record.get('linf_sidecar')!r}")
        layout = None
        if "axes" in record:
            layout = StackLayout(axes=str(record["axes"]), shape=tuple(int(n) for n in record["shape"]))
            if len(layout.axes) != len(layout.shape) or "Y" not in layout.axes or "X" not in layout.axes:
                raise ValueError(f"axes {layout.axes!r} do not fit shape {layout.shape}")
        signed = bool(record.get("signed", False))
        offset, bits = int(record.get("offset", 0)), int(record.get("signed_bits", 16))
        if signed and not (1 < bits <= 16 and offset == 1 << (bits - 1)):
            raise ValueError(f"offset {offset} is not 2**(bits-1) for signed {bits}-bit samples")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"invalid sidecar {path}: {exc}") from None
    return Sidecar(layout=layout, signed=signed, offset=offset, signed_bits=bits)
