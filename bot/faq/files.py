"""Fetching /faq's files from Slack: resolve, download with the bot token, extract text.

- A file given by id only (the message shortcut) is resolved with `files.info`.
- `url_private_download` is fetched with `Authorization: Bearer <bot token>`, only from a
  Slack host (or the configured API host, for tests), so the token never goes elsewhere;
  aiohttp drops the header on a redirect to another host.
- The body is streamed and abandoned past `MAX_FILE_BYTES` (a declared size over the
  limit is refused before any download).
- Slack answers a download it will not serve (wrong token, missing `files:read`, no access)
  with a redirect to its sign-in page, an HTML page with status 200: an HTML answer for a
  file that is not HTML is an authorisation problem, reported as such, never a document.
- 429, 5xx, timeouts and connection errors are transient: `TransientDownloadError` lets
  the job retry; on the job's last attempt they become a refusal so the others still count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.faq.modal import FileRef
from pipelines.documents.extract import (
    MAX_FILE_BYTES,
    RejectedFile,
    extract_within,
    file_kind,
    too_large,
)
from pipelines.faq.chain import SourceDocument

CHUNK_BYTES = 64 * 1024
DOWNLOAD_CONCURRENCY = 4
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=15, sock_read=30)
SIGN_IN_REASON = (
    "Slack sent its sign-in page instead of the file: the bot cannot read it "
    "(check the app's files:read scope and that the file is shared where the bot can see it)"
)
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_MB = 1024 * 1024

logger = logging.getLogger(__name__)


class TransientDownloadError(Exception):
    """The download may work if tried again later."""


@dataclass
class Fetched:
    docs: list[SourceDocument] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def token_may_go_to(url: str, api_url: str) -> bool:
    """Only Slack's own hosts (or the API host we were configured with) see the token."""
    parts, api = urlsplit(url), urlsplit(api_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")):
        return True
    return bool(host) and (parts.scheme, parts.netloc) == (api.scheme, api.netloc)


def _too_large(name: str, size: int | None = None) -> RejectedFile:
    if size is None:  # streamed past the limit: the real size is unknown
        return RejectedFile(name, f"larger than {MAX_FILE_BYTES // _MB} MB")
    return too_large(name, size)


async def resolve(client: AsyncWebClient, ref: FileRef) -> FileRef | RejectedFile:
    """The file with its download URL (`files.info` when it came by id only)."""
    if ref.url:
        return ref
    label = ref.name or ref.id or "a file"
    if not ref.id:
        return RejectedFile(label, "Slack gave no way to download it")
    try:
        response = await client.files_info(file=ref.id)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or exc.response.status_code)
        if exc.response.status_code == 429 or exc.response.status_code >= 500:
            raise TransientDownloadError(f"files.info: {error}") from exc
        return RejectedFile(label, f"Slack would not describe it ({error})")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientDownloadError(f"files.info: {type(exc).__name__}") from exc
    info = response.get("file") or {}
    url = info.get("url_private_download") or info.get("url_private")
    name = str(info.get("name") or info.get("title") or label)
    if not url:
        return RejectedFile(name, "the file is not available for download (deleted?)")
    return FileRef(
        id=ref.id, name=name, mimetype=info.get("mimetype"), size=info.get("size"), url=url
    )


async def download(
    session: aiohttp.ClientSession, ref: FileRef, token: str, api_url: str
) -> bytes | RejectedFile:
    """The file's bytes, or why it cannot be used (raises `TransientDownloadError`)."""
    assert ref.url is not None
    if ref.size is not None and ref.size > MAX_FILE_BYTES:
        return _too_large(ref.name, ref.size)
    if not token_may_go_to(ref.url, api_url):
        return RejectedFile(ref.name, "its download address is not a Slack address")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with session.get(ref.url, headers=headers, max_redirects=5) as response:
            if response.status in TRANSIENT_STATUSES:
                raise TransientDownloadError(f"HTTP {response.status}")
            if response.status in (401, 403):
                return RejectedFile(
                    ref.name, f"Slack refused the download (HTTP {response.status})"
                )
            if response.status == 404:
                return RejectedFile(ref.name, "the file is gone (deleted?)")
            if response.status != 200:
                return RejectedFile(ref.name, f"the download failed (HTTP {response.status})")
            if response.content_type == "text/html" and (
                response.history or file_kind(ref.name, b"", ref.mimetype) != "html"
            ):
                return RejectedFile(ref.name, SIGN_IN_REASON)
            declared = response.content_length
            if declared is not None and declared > MAX_FILE_BYTES:
                return _too_large(ref.name, declared)
            data = bytearray()
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                data += chunk
                if len(data) > MAX_FILE_BYTES:
                    return _too_large(ref.name)
            return bytes(data)
    except aiohttp.TooManyRedirects:
        return RejectedFile(ref.name, SIGN_IN_REASON)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientDownloadError(f"{type(exc).__name__}: {exc}") from exc


async def fetch_one(
    client: AsyncWebClient,
    session: aiohttp.ClientSession,
    ref: FileRef,
    *,
    token: str,
    api_url: str,
    notes: list[str],
) -> SourceDocument | RejectedFile:
    resolved = await resolve(client, ref)
    if isinstance(resolved, RejectedFile):
        return resolved
    data = await download(session, resolved, token, api_url)
    if isinstance(data, RejectedFile):
        return data
    try:
        return await extract_within(resolved.name, data, resolved.mimetype, notes=notes)
    except Exception as exc:  # a parser bug must not sink the other files
        logger.exception("extracting %s failed", resolved.name)
        return RejectedFile(resolved.name, f"could not be read ({type(exc).__name__})")


async def fetch_documents(
    client: AsyncWebClient,
    refs: Sequence[FileRef],
    *,
    token: str,
    api_url: str,
    give_up_on_transient: bool = False,
    concurrency: int = DOWNLOAD_CONCURRENCY,
) -> Fetched:
    """Every file as a document or a refusal, in the order given; titles made unique.

    Transient failures raise `TransientDownloadError` unless `give_up_on_transient`, in
    which case that file is refused and the others still count.
    """
    fetched = Fetched()
    gate = asyncio.Semaphore(concurrency)

    async def one(ref: FileRef) -> SourceDocument | RejectedFile:
        async with gate:
            try:
                return await fetch_one(
                    client, session, ref, token=token, api_url=api_url, notes=fetched.notes
                )
            except TransientDownloadError as exc:
                if not give_up_on_transient:
                    raise
                return RejectedFile(ref.name or ref.id, f"could not be downloaded ({exc})")

    try:
        async with (
            aiohttp.ClientSession(timeout=DOWNLOAD_TIMEOUT) as session,
            asyncio.TaskGroup() as group,  # one failure cancels the other downloads
        ):
            tasks = [group.create_task(one(ref)) for ref in refs]
    except* TransientDownloadError as failed:
        raise failed.exceptions[0] from None
    outcomes = [task.result() for task in tasks]
    seen: set[str] = set()
    for outcome in outcomes:
        if isinstance(outcome, RejectedFile):
            fetched.rejected.append(outcome)
            continue
        title, copy = outcome.title, 1
        while title in seen:  # sources are cited by title: two "notes.md" must differ
            copy += 1
            title = f"{outcome.title} ({copy})"
        seen.add(title)
        fetched.docs.append(SourceDocument(title=title, text=outcome.text))
    return fetched


__all__ = [
    "SIGN_IN_REASON",
    "Fetched",
    "TransientDownloadError",
    "download",
    "fetch_documents",
    "resolve",
    "token_may_go_to",
]
