"""`supportbot kb`: add a folder, list, show, re-add a changed file, remove, reindex."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.pdf_pages import ROUTER_MANUAL, pdf_with_lines


def test_kb_commands_from_a_terminal(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("LLM_PROVIDER", "offline")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "returns.md").write_text("# Returns\n## Refund timing\nWithin 14 days.\n")
    (docs / "router-x200.pdf").write_bytes(pdf_with_lines(ROUTER_MANUAL))
    (docs / "notes.bin").write_bytes(b"\x00\x01")  # not a document: not picked up
    runner = CliRunner()

    added = runner.invoke(app, ["kb", "add", str(docs)])
    assert added.exit_code == 0, added.output
    assert "added\treturns.md\tversion 1\t1 passages" in added.output
    assert "added\trouter-x200.pdf\tversion 1\t4 passages" in added.output
    assert "retrieval: BM25 alone (no embedding model: the offline provider has none)" in (
        added.output
    )

    shown = runner.invoke(app, ["kb", "show", "router-x200.pdf"])
    assert "[3 Resetting the admin password] Hold the recessed pinhole button" in shown.output

    (docs / "returns.md").write_text("# Returns\n## Refund timing\nWithin 5 days.\n")
    again = runner.invoke(
        app, ["kb", "add", str(docs / "returns.md"), str(docs / "router-x200.pdf")]
    )
    assert "replaced\treturns.md\tversion 2" in again.output
    assert "unchanged\trouter-x200.pdf\tversion 1" in again.output

    listed = runner.invoke(app, ["kb", "list"]).output.splitlines()
    assert len(listed) == 2 and listed[0].startswith("returns.md\tv2\t1 passages\tcli:cli")
    assert all(line.endswith("searched") for line in listed)

    assert (
        runner.invoke(app, ["kb", "remove", "returns.md"]).output
        == "removed returns.md (1 version)\n"
    )
    missing = runner.invoke(app, ["kb", "remove", "returns.md"])
    assert missing.exit_code == 1 and "no document named 'returns.md'" in missing.output
    reindexed = runner.invoke(app, ["kb", "reindex"])
    assert reindexed.exit_code == 0 and "retrieval: BM25 alone" in reindexed.output
    assert [
        line.split("\t")[0] for line in runner.invoke(app, ["kb", "list"]).output.splitlines()
    ] == ["router-x200.pdf"]
