"""The committed docs/configuration.md must match the option registry."""

from __future__ import annotations

from pathlib import Path

from standby.config import render_options_markdown
from standby.config.options import ALL_OPTIONS

_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
_REGENERATE = (
    "uv run python -c \"from standby.config import render_options_markdown as r; print(r(), end='')\" "
    "> docs/configuration.md"
)


def test_committed_configuration_doc_is_up_to_date() -> None:
    assert _DOC.read_text(encoding="utf-8") == render_options_markdown(), (
        f"docs/configuration.md is out of date; regenerate it with: {_REGENERATE}"
    )


def test_doc_lists_every_key_and_deprecated_key() -> None:
    text = render_options_markdown()
    for option in ALL_OPTIONS:
        assert f"| `{option.key}` |" in text
        for key in option.deprecated_keys:
            assert f"`{key}`" in text


def test_table_cells_are_escaped() -> None:
    text = render_options_markdown()
    assert "List&lt;String&gt;" in text
    assert "`open`, `creator`" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(ALL_OPTIONS)
    for row in rows:
        assert row.replace("\\|", "").count("|") == 6, row
