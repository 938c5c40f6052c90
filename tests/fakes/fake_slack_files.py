"""Files in the fake Slack (mixed into `FakeSlack`): downloads, the v2 upload flow, files.info.

    file = slack.host_file("guide.md", b"# Guide ...")          # a Slack file object
    file = slack.host_file("report.pdf", data, login_redirect=True)
    view_state = {"faq_files": {"files": {"type": "file_input", "files": [file]}}}

- `GET /files-pri/<team>-<id>/download/<name>` (the file's `url_private_download`) serves
  the bytes only with `Authorization: Bearer <bot token>`; without it, or for a file hosted
  with `login_redirect=True`, it answers like Slack does: a 302 to an HTML sign-in page.
  Every download is recorded in `slack.downloads`; `failures=n` makes the first n 503s.
- `files.getUploadURLExternal` -> `POST /upload/v1/<id>` -> `files.completeUploadExternal`,
  the three steps of slack-sdk's `files_upload_v2`; `slack.uploaded_files()` lists the
  completed uploads with their bytes, channel and thread.
- `files.info` describes hosted files (`file_not_found` otherwise).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

Params = dict[str, Any]

SIGN_IN_PAGE = b"""<!DOCTYPE html><html><head><title>Slack</title></head>
<body><h1>Sign in to Slack</h1><form action="/signin" method="post">
<input name="email"><input name="password" type="password"></form></body></html>"""


@dataclass
class HostedFile:
    id: str
    name: str
    data: bytes
    mimetype: str
    size: int
    login_redirect: bool = False
    failures: int = 0  # answer 503 this many times before serving the file


@dataclass
class Download:
    file_id: str
    authorization: str
    status: int


@dataclass
class Upload:
    id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


class SlackFilesMixin:
    # Provided by FakeSlack.
    token: str | None
    team_id: str
    api_url: str

    def _init_files(self) -> None:
        self.hosted: dict[str, HostedFile] = {}
        self.uploads: dict[str, Upload] = {}
        self.downloads: list[Download] = []
        self._file_ids = itertools.count(1)

    def _add_file_routes(self, app: web.Application) -> None:
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._serve_download)
        app.router.add_get("/signin", self._serve_sign_in)
        app.router.add_post("/upload/v1/{file_id}", self._serve_upload)

    @property
    def root_url(self) -> str:
        return self.api_url.rsplit("/api/", 1)[0]

    # --- scripting and inspecting -------------------------------------------------------

    def host_file(
        self,
        name: str,
        data: bytes,
        mimetype: str | None = None,
        *,
        login_redirect: bool = False,
        size: int | None = None,
        failures: int = 0,
    ) -> dict[str, Any]:
        """Serve `data` as a Slack file; returns its file object (as in a file_input's state).

        `size` overrides the declared size (such a file is streamed without a
        Content-Length: it tests the streaming cap);
        `failures` downloads answer 503 before one succeeds."""
        file_id = f"F{next(self._file_ids):08d}"
        hosted = HostedFile(
            id=file_id,
            name=name,
            data=data,
            mimetype=mimetype or "application/octet-stream",
            size=len(data) if size is None else size,
            login_redirect=login_redirect,
            failures=failures,
        )
        self.hosted[file_id] = hosted
        return self._file_object(hosted)

    def uploaded_files(self, channel: str | None = None) -> list[Upload]:
        return [
            upload
            for upload in self.uploads.values()
            if upload.completed and (channel is None or upload.channel == channel)
        ]

    def _file_object(self, hosted: HostedFile) -> dict[str, Any]:
        path = f"/files-pri/{self.team_id}-{hosted.id}"
        name = quote(hosted.name)
        return {
            "id": hosted.id,
            "name": hosted.name,
            "title": hosted.name,
            "mimetype": hosted.mimetype,
            "filetype": hosted.name.rsplit(".", 1)[-1] if "." in hosted.name else "",
            "size": hosted.size,
            "url_private": f"{self.root_url}{path}/{name}",
            "url_private_download": f"{self.root_url}{path}/download/{name}",
        }

    # --- HTTP routes --------------------------------------------------------------------

    async def _serve_download(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["team_file"].rsplit("-", 1)[-1]
        authorization = request.headers.get("Authorization", "")
        hosted = self.hosted.get(file_id)
        authorized = (
            authorization == f"Bearer {self.token}"
            if self.token is not None
            else authorization.startswith("Bearer ")
        )
        if hosted is None:
            self.downloads.append(Download(file_id, authorization, 404))
            return web.Response(status=404, text="file not found")
        if not authorized or hosted.login_redirect:
            self.downloads.append(Download(file_id, authorization, 302))
            raise web.HTTPFound(f"/signin?redir={quote(request.path)}")
        if hosted.failures > 0:
            hosted.failures -= 1
            self.downloads.append(Download(file_id, authorization, 503))
            return web.Response(status=503, text="service unavailable")
        self.downloads.append(Download(file_id, authorization, 200))
        content_type = hosted.mimetype.split(";")[0]
        if hosted.size == len(hosted.data):
            return web.Response(body=hosted.data, content_type=content_type)
        # A file whose declared size lies is streamed without a Content-Length.
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(hosted.data), 256 * 1024):
            try:
                await response.write(hosted.data[start : start + 256 * 1024])
            except ConnectionError:  # the client stopped reading: that is the point
                return response
        await response.write_eof()
        return response

    async def _serve_sign_in(self, _: web.Request) -> web.Response:
        return web.Response(body=SIGN_IN_PAGE, content_type="text/html")

    async def _serve_upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="unknown upload")
        upload.data = await request.read()
        return web.Response(text=f"OK - {len(upload.data)}")

    # --- Web API methods ----------------------------------------------------------------

    def _api_files_getUploadURLExternal(self, params: Params) -> dict[str, Any]:
        if not params.get("filename") or params.get("length") in (None, ""):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._file_ids):08d}"
        self.uploads[file_id] = Upload(file_id, str(params["filename"]), int(params["length"]))
        return {
            "ok": True,
            "upload_url": f"{self.root_url}/upload/v1/{file_id}",
            "file_id": file_id,
        }

    def _api_files_completeUploadExternal(self, params: Params) -> dict[str, Any]:
        files = params.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        done = []
        for item in files or []:
            upload = self.uploads.get(str(item.get("id")))
            if upload is None or upload.data is None:
                return {"ok": False, "error": "file_not_found"}
            upload.title = item.get("title") or upload.filename
            upload.channel = params.get("channel_id") or None
            upload.thread_ts = params.get("thread_ts") or None
            upload.initial_comment = params.get("initial_comment") or None
            upload.completed = True
            done.append({"id": upload.id, "name": upload.filename, "title": upload.title})
        return {"ok": True, "files": done}

    def _api_files_info(self, params: Params) -> dict[str, Any]:
        hosted = self.hosted.get(str(params.get("file")))
        if hosted is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": self._file_object(hosted)}


__all__ = ["Download", "HostedFile", "SlackFilesMixin", "Upload"]
