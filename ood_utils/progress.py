"""Progress bars: shown in live runs, left out of the book's built pages.

Every loop of the package that can take long shows a ``tqdm`` bar through
:func:`progress_bar`. Its ``progress`` argument turns a bar off, and so does tqdm's own
``TQDM_DISABLE=1`` (:func:`ood_utils.run.bars_disabled`), which tqdm's notebook bars
ignore: the book's build sets it for its kernels (``tools/build_book.py``), so it
freezes no bar into a page, while a reader's own run shows them all."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

from .run import bars_disabled


def progress_bar(
    iterable: Iterable[Any] | None = None, progress: bool = True, **options: Any
) -> tqdm:
    """``tqdm(iterable, **options)``, always disabled without ``progress``."""
    if not progress or bars_disabled():
        options["disable"] = True
    return tqdm(iterable, **options)
