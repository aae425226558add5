"""The evaluation layer: image-quality ``metrics``, the ``references`` codecs (rate-matched JPEG 2000 /
WebP, JPEG-LS), ``evaluate`` (the paper's tables), ``report`` (tables, plots, crops). May import the
codec, runtime and learn layers."""
