"""Small helpers for the chapters: sentences whose numbers come from the run."""

from __future__ import annotations

from IPython.display import Markdown, display


def say(text: str) -> None:
    """Display ``text`` as Markdown in the notebook (and on the website).

    Use it with an f-string so every number in a sentence is computed, never typed::

        say(f"The CNN classifies **{acc:.1%}** of the test digits correctly.")
    """
    display(Markdown(text))
