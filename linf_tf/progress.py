"""Progress bars that draw only on a terminal.

tqdm redraws its line with ``\\r``; in a redirected log (``> run.log 2>&1``, CI, nohup) that leaves
hundreds of half-lines. Every bar the CLI and the scripts create goes through here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def stderr_is_terminal() -> bool:
    """Whether stderr (where tqdm draws) is an interactive terminal."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(iterable: Iterable | None = None, *, enabled: bool = True, **options: Any) -> tqdm:
    """``tqdm(iterable, **options)``, silent unless ``enabled`` and stderr is a terminal."""
    return tqdm(iterable, disable=not (enabled and stderr_is_terminal()), **options)
