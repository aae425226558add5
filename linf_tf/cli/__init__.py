"""The ``linf`` command: compress images to ``.nlc`` streams, decompress them, inspect headers.

Every decoded sample is within ``tau`` of the original (``tau = 0``: bit-exact); a stream written with
``compress --restore-slack K`` (format 5) also carries an encoder-verified restoration, which decompress
applies, within ``tau + floor(K * tau)``. Several inputs, or a folder, are processed file by file
into an output folder, with a progress bar and a summary: a file that fails is reported by name and
the rest still run; the exit status is then 2.

Modules: ``parser`` (options), ``compress`` / ``decompress`` / ``restore`` / ``info`` (one command
each), ``batch`` (folders, batches, summaries), ``common`` (errors, results, path checks, printing).
"""

from __future__ import annotations

import logging
import sys

from linf_tf.cli.common import CliError, describe
from linf_tf.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def _quiet_libraries() -> None:
    """Damaged files make OpenCV and tifffile log their own half-lines; linf reports each failure itself."""
    from cv2.utils import logging as opencv_logging

    opencv_logging.setLogLevel(opencv_logging.LOG_LEVEL_ERROR)
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    """Run ``linf`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    _quiet_libraries()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version, usage errors (already printed)
        return exit_request.code if isinstance(exit_request.code, int) else 2
    try:
        return args.handler(args)
    except (OSError, ValueError, CliError) as exc:  # CodecError is a ValueError
        print(f"linf: error: {describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linf: interrupted", file=sys.stderr)
        return 130
