"""`supportbot eval`: measure the workflow patterns on a labelled set, against one prompt.

Registered on the main Typer app by `register(app)`. By default it runs the three files of
the repository's eval/ folder on the configured provider (offline without a key); any file
in the same format can be given with `--dataset` (format: eval/README.md).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.errors import load_settings
from bot.errors import SettingsError

if TYPE_CHECKING:
    from bot.settings import Settings
    from pipelines.eval.data import LoadedItem
    from pipelines.eval.report import EvalReport
    from pipelines.faq.chain import SourceDocument

EVAL_DIR = Path(__file__).parents[2] / "eval"
DEFAULT_DATASETS = ("single_intent.jsonl", "multi_intent.jsonl", "faq.jsonl")
DEFAULT_DOCS = EVAL_DIR / "faq_docs"
KNOWLEDGE_ITEMS = EVAL_DIR / "knowledge.jsonl"
KNOWLEDGE_DOCS = EVAL_DIR / "kb_docs"


def register(app: typer.Typer) -> None:
    """Add `eval` (and `eval export`) to the `supportbot` app: `supportbot eval [options]`
    runs the evaluation, `supportbot eval export --feedback down` exports real failures."""
    from bot.cli.eval_export import export_command

    eval_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
    eval_app.callback()(eval_command)
    eval_app.command("export")(export_command)
    app.add_typer(eval_app, name="eval")


def _stop(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def load_inputs(
    datasets: list[Path], docs_folder: Path
) -> tuple[list[LoadedItem], list[SourceDocument]]:
    """The items and documents, checked before any LLM call is spent on them."""
    from pipelines.eval.data import check_sources, load_datasets, load_documents

    items = load_datasets(datasets)
    docs = load_documents(docs_folder)
    check_sources(items, docs)
    return items, docs


async def run_eval(
    settings: Settings,
    items: list[LoadedItem],
    docs: list[SourceDocument],
    baseline: bool,
    concurrency: int,
) -> EvalReport:
    from pipelines.eval.runner import EvalSetup, evaluate
    from pipelines.llm.factory import build_llm
    from storage.catalog import CATALOG

    llm = build_llm(settings)
    products = [name for _, name, _, _ in CATALOG]
    try:
        return await evaluate(
            EvalSetup(llm, settings, docs, products), items, baseline, concurrency
        )
    finally:
        close = getattr(llm, "aclose", None)
        if close is not None:
            await close()


async def run_knowledge_eval(settings: Settings, as_json: bool, concurrency: int) -> None:
    """`--knowledge`: BM25 vs hybrid over eval/knowledge.jsonl and eval/kb_docs."""
    from pipelines.eval.knowledge import evaluate_knowledge, format_knowledge, knowledge_json
    from pipelines.knowledge.embeddings import embedder_for
    from pipelines.llm.factory import build_llm

    llm = build_llm(settings)
    embedder = embedder_for(llm, settings)
    typer.echo(
        f"evaluating the knowledge base on the {settings.resolved_provider} provider", err=True
    )
    try:
        reports = await evaluate_knowledge(
            llm, settings, embedder, KNOWLEDGE_ITEMS, KNOWLEDGE_DOCS, concurrency
        )
    finally:
        close = getattr(llm, "aclose", None)
        if close is not None:
            await close()
    if as_json:
        typer.echo(json.dumps(knowledge_json(reports), indent=2))
    else:
        typer.echo(format_knowledge(reports, embedder is not None))


def eval_command(
    ctx: typer.Context,
    dataset: Annotated[
        list[Path] | None,
        typer.Option(
            "--dataset",
            "-d",
            help="A JSONL file to run (repeatable). Default: the three files in eval/.",
        ),
    ] = None,
    docs: Annotated[
        Path, typer.Option("--docs", help="Folder of the documents that `sources` name.")
    ] = DEFAULT_DOCS,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    baseline: Annotated[
        bool,
        typer.Option("--baseline/--no-baseline", help="Also run the single-prompt baseline."),
    ] = True,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Items evaluated at once.")
    ] = 8,
    knowledge: Annotated[
        bool,
        typer.Option(
            "--knowledge",
            help="Instead: the knowledge base over eval/kb_docs (recall@5, citations, "
            "declines), BM25 alone vs hybrid.",
        ),
    ] = False,
) -> None:
    """Routing accuracy, task P/R/F1, citation P/R and cost: pipeline vs one prompt."""
    if ctx.invoked_subcommand is not None:  # `eval export`: that command's work only
        return
    from pipelines.eval.data import DatasetError
    from pipelines.eval.report import format_report

    try:
        settings = load_settings()
    except SettingsError as exc:
        raise _stop(str(exc)) from None
    if knowledge:
        try:
            asyncio.run(run_knowledge_eval(settings, as_json, concurrency))
        except DatasetError as exc:
            raise _stop(str(exc)) from None
        return
    paths = dataset or [EVAL_DIR / name for name in DEFAULT_DATASETS]
    try:
        items, documents = load_inputs(paths, docs)
    except DatasetError as exc:
        raise _stop(str(exc)) from None
    typer.echo(
        f"evaluating {len(items)} items on the {settings.resolved_provider} provider"
        + (" (and the single-prompt baseline)" if baseline else ""),
        err=True,
    )
    report = asyncio.run(run_eval(settings, items, documents, baseline, concurrency))
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        typer.echo(format_report(report))
