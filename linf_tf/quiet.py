"""Quiet native logging: the one place that sets TensorFlow's / absl's logging environment.

TensorFlow prints its C++ log lines (oneDNN, CUDA probing, ``cuInit`` errors) while it is imported,
so the environment must be set before the first ``import tensorflow`` anywhere in the process;
``linf_tf/__init__.py`` calls :func:`quiet_native_logs` for that reason. A value the user already
set wins (``TF_CPP_MIN_LOG_LEVEL=0 linf ...`` shows everything).

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` from C++ to file
descriptor 2 when the delegate is applied (``allocate_tensors``); ai-edge-litert 2.3.0 has no
option to silence it other than disabling the default delegates (and XNNPACK's speed), so
:func:`silenced_stderr` redirects the descriptor around that call.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # hides INFO/WARNING/ERROR C++ lines (cuInit 303 is an ERROR line)
    "TF_CPP_MIN_VLOG_LEVEL": "0",
    "ABSL_MIN_LOG_LEVEL": "3",
    "GRPC_VERBOSITY": "ERROR",
    "TF_ENABLE_ONEDNN_OPTS": "0",  # no "oneDNN custom operations are on" notice; same results on any CPU
}
VERBOSE_VARIABLE = "LINF_VERBOSE"  # LINF_VERBOSE=1: keep every native log line


def verbose() -> bool:
    """Whether the user asked for the native log lines (``LINF_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


def quiet_native_logs() -> None:
    """Set the logging environment (only variables the user has not set). Harmless once TF is loaded."""
    if verbose():
        return
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration (native code writes there directly).

    Python's own ``sys.stderr`` is flushed first so nothing already written is lost. A no-op with
    ``LINF_VERBOSE=1`` or when descriptor 2 cannot be duplicated.
    """
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow():  # -> the tensorflow module
    """``import tensorflow`` (and Keras) without its import-time C++ lines.

    TF 2.21 logs "Could not find cuda drivers" through absl from ``cudart_stub.cc`` before
    ``TF_CPP_MIN_LOG_LEVEL`` applies (absl prints a "WARNING: All log messages before
    absl::InitializeLog()" preamble, twice), so the environment alone does not hide them: the import
    runs with descriptor 2 silenced. Python exceptions are unaffected (they are raised, not printed).
    """
    quiet_native_logs()
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with silenced_stderr():
        import keras  # noqa: F401  (imports TensorFlow, its backend)
        import tensorflow
    return tensorflow


def quiet_script_logs() -> None:
    """Python-side INFO lines of absl and TensorFlow (``signature_serialization.py``, ``builder_impl.py``
    ...) in the scripts' normal output: WARNING and above only, unless ``LINF_VERBOSE=1``. Call it
    at the start of an absl ``main`` (``app.run`` sets the verbosity from its flags before that)."""
    if verbose():
        return
    import logging

    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    try:
        from absl import logging as absl_logging
    except ImportError:  # absl comes with the [train] extra
        return
    if absl_logging.get_verbosity() <= absl_logging.INFO:
        absl_logging.set_verbosity(absl_logging.WARNING)
