"""`supportbot kb`: the knowledge base of documents, from a terminal.

    supportbot kb add FILE|DIR...   # split into passages and store (a changed file replaces
                                    # its earlier version; the same file again changes nothing)
    supportbot kb list              # every document, its version and passages
    supportbot kb show NAME         # a document's passages with their sections
    supportbot kb remove NAME       # the document, its passages and their vectors
    supportbot kb reindex           # drop superseded versions and unused vectors, and
                                    # compute the vectors of passages that lack one

The operator may teach the bot, like a support agent: what is added here is knowledge at
once. Registered on the main Typer app with `register(app)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from bot.cli.errors import fail, load_settings, one_line_errors

if TYPE_CHECKING:
    from storage.db import Database

OPERATOR = "cli"
T = TypeVar("T")
kb_app = typer.Typer(help="The knowledge base of documents answers cite.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `kb` command group to `app`."""
    app.add_typer(kb_app, name="kb")


def _with_database(work: Callable[[Database], Awaitable[T]], *, index: bool = False) -> T:
    """Migrate, open the configured database, run `work`, close it. With `index`, then
    build the search index as a server would (vectors for new passages included: a
    customer's first question does not wait for them) and say how it searches."""
    from storage.db import Database
    from storage.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)

    async def run() -> T:
        db = Database(settings.database_url)
        try:
            done = await work(db)
            if index:
                typer.echo(f"retrieval: {await _refresh_index(db)}")
            return done
        finally:
            await db.dispose()

    return asyncio.run(run())


async def _refresh_index(db: Database) -> str:
    from pipelines.knowledge.embeddings import embedder_for
    from pipelines.knowledge.retrieval import KnowledgeBase
    from pipelines.llm.factory import build_llm

    settings = load_settings()
    llm = build_llm(settings)
    try:
        return await KnowledgeBase(db.sessions, embedder_for(llm, settings)).refresh()
    finally:
        close = getattr(llm, "aclose", None)
        if close is not None:
            await close()


def document_files(paths: list[Path]) -> list[Path]:
    """The files named, and the supported files under each folder named (sorted)."""
    from pipelines.documents.extract import SUFFIX_KINDS

    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIX_KINDS
            )
        else:
            found.append(path)
    return found


@kb_app.command("add")
@one_line_errors
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files, or folders of files, to add.")],
) -> None:
    """Add documents (a changed one replaces its earlier version)."""
    from pipelines.documents.extract import load_documents
    from pipelines.knowledge.library import NewDocument, add_to_knowledge

    files = document_files(paths)
    if not files:
        raise fail("no documents found in the paths given")
    docs, problems = load_documents(files)
    for problem in problems:
        typer.secho(f"skipped {problem}", fg=typer.colors.YELLOW, err=True)
    if not docs:
        raise fail("no usable document among the files given", code=1)

    async def work(db: Database) -> None:
        for doc in docs:
            added = await add_to_knowledge(
                db, NewDocument(doc.title, doc.text), source="cli", added_by=OPERATOR
            )
            typer.echo(
                f"{added.status}\t{doc.title}\tversion {added.version}\t{added.passages} passages"
            )

    _with_database(work, index=True)


@kb_app.command("list")
@one_line_errors
def list_command() -> None:
    """Every stored document: name, version, passages, source, and whether it is searched."""
    from storage.knowledge import list_documents

    documents = _with_database(lambda db: list_documents(db.sessions))
    if not documents:
        typer.echo("the knowledge base is empty")
    for d in documents:
        state = "searched" if d.searchable else "not searched (pending review or superseded)"
        when = d.created_at.strftime("%Y-%m-%d %H:%M")
        typer.echo(
            f"{d.name}\tv{d.version}\t{d.passages} passages\t{d.source}:{d.added_by}\t{when}\t{state}"
        )


@kb_app.command("show")
@one_line_errors
def show(name: Annotated[str, typer.Argument(help="The document's name.")]) -> None:
    """A document's passages (its searched version), each with its section path."""
    from storage.knowledge import document_passages, list_documents

    async def work(db: Database) -> list[str]:
        versions = [d for d in await list_documents(db.sessions) if d.name == name]
        if not versions:
            raise fail(f"no document named {name!r}", code=1)
        chosen = next((d for d in versions if d.searchable), versions[0])
        lines = [f"{chosen.name} v{chosen.version}: {chosen.passages} passages"]
        for p in await document_passages(db.sessions, chosen.id):
            where = " > ".join(p.section) or "(no section)"
            preview = " ".join(p.text.split())[:160]
            lines.append(f"[{where}] {preview}")
        return lines

    for line in _with_database(work):
        typer.echo(line)


@kb_app.command("remove")
@one_line_errors
def remove(name: Annotated[str, typer.Argument(help="The document's name.")]) -> None:
    """Remove a document: every version, its passages and their vectors."""
    from storage.knowledge import remove_document

    removed = _with_database(lambda db: remove_document(db.sessions, name))
    if not removed:
        raise fail(f"no document named {name!r}", code=1)
    typer.echo(f"removed {name} ({removed} version{'s' if removed > 1 else ''})")


@kb_app.command("reindex")
@one_line_errors
def reindex() -> None:
    """Drop superseded versions and unused vectors; compute missing vectors."""
    from storage.knowledge import prune_superseded

    pruned = _with_database(lambda db: prune_superseded(db.sessions), index=True)
    typer.echo(f"reindexed: {pruned} superseded version(s) dropped")
