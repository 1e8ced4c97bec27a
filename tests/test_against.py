"""The chapters' closing sections (ood_utils.against): one call per chapter, a section
that shows its parts in order and carries what the chapter saves."""

from __future__ import annotations

import pandas as pd
import pytest

from ood_utils import against, run


def test_a_chapter_without_a_section_is_refused_by_name():
    ctx = run.from_environment("08_training_schemes")
    with pytest.raises(ValueError, match="08_training_schemes.*those that do"):
        against.the_original(ctx)


def test_every_listed_chapter_has_a_module_with_a_section_function():
    import importlib

    for chapter, module in against.CHAPTERS.items():
        mod = importlib.import_module(f"ood_utils.against.{module}")
        assert callable(mod.section), chapter
        assert module[-2:] == chapter[:2]


def test_a_section_shows_its_parts_in_order_and_skips_absent_tables(monkeypatch):
    shown = []
    monkeypatch.setattr(against, "display", shown.append)
    section = against.Section()
    section.say("**First.**")
    section.show(None)  # an original-scale table that is not present
    table = pd.DataFrame({"a": [1]})
    section.show(table)
    section.say("Last.")
    section._ipython_display_()
    assert [type(p).__name__ for p in shown] == ["Markdown", "DataFrame", "Markdown"]
    assert shown[0].data == "**First.**" and shown[1] is table
    assert section.claims == {} and section.tables == {}
