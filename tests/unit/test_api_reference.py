"""docs/reference.md is generated from the schema and current on disk."""

from __future__ import annotations

from pathlib import Path

from sloscale.api.reference import main, reference_text
from tests.unit.test_api_crd import openapi, walk

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_reference_is_current() -> None:
    on_disk = (ROOT / "docs" / "reference.md").read_text()
    assert on_disk == reference_text(), "docs/reference.md is stale: run `make docs`"


def test_check_mode_fails_on_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "reference.md"
    out.write_text("stale")
    assert main(["--out", str(out), "--check"]) == 1
    assert main(["--out", str(out)]) == 0
    assert main(["--out", str(out), "--check"]) == 0


def test_every_field_of_the_crd_has_a_row() -> None:
    text = reference_text()
    fields = [
        path.lstrip(".")
        for path, _ in walk(openapi())
        if path.startswith((".spec", ".status")) and not path.endswith(("{}", "[]"))
    ]
    missing = [field for field in fields if f"| `{field}` |" not in text]
    assert missing == []
