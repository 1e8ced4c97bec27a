"""Small fixes to the generated site, found by the browser test (tests/test_browser.py).

- sphinx-thebe 0.3.1 registers its configuration script twice, so every page loads it
  twice and the browser reports ``Identifier 'THEBE_JS_URL' has already been declared``:
  each page keeps only the first copy of any script.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _dedupe_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    seen, kept = set(), []
    for script in context.get("script_files", []):
        key = (
            getattr(script, "filename", None) or "",  # inline scripts: None or ""
            tuple(sorted(getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"] = kept


def setup(app: Sphinx) -> dict:
    app.connect(
        "html-page-context", _dedupe_scripts, priority=900
    )  # after the others add theirs
    return {"parallel_read_safe": True, "parallel_write_safe": True}
