"""A local stand-in for the Hugging Face hub: a real HTTP server on 127.0.0.1 that serves folders in the hub's
URL layout, so that ``huggingface_hub`` itself (``snapshot_download``, ``hf_hub_download``; ``HF_ENDPOINT``
pointed at it) downloads from it exactly as it would from huggingface.co.

The routes are the ones those functions call (huggingface_hub 2.x):
  GET  /api/{models,datasets}/<owner>/<name>/revision/<rev>          repository info (commit sha, files)
  GET  /api/{models,datasets}/<owner>/<name>/tree/<rev>[/<path>]     file listing (one page)
  HEAD/GET /<owner>/<name>/resolve/<rev>/<file>                      a model file
  HEAD/GET /datasets/<owner>/<name>/resolve/<rev>/<file>             a dataset file
  GET  /files/<name>                                                 a plain file (a release URL)
A repository is a folder ``<root>/<models|datasets>/<owner>/<name>``; its one commit is a hash of its files;
its revisions are ``main``, that commit, and the tags given to ``tag()``. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


def _files(repo: Path) -> list[str]:
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())


def commit_of(repo: Path) -> str:
    h = hashlib.sha1()
    for f in _files(repo):
        h.update(f.encode() + b"\0" + (repo / f).read_bytes())
    return h.hexdigest()


class HubStandIn:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.tags: dict[tuple[str, str], dict[str, str]] = {}
        self.requests: list[str] = []
        self.handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.server.server_close()  # serving starts with `with hub:` (again for each `with`)

    def add(self, kind: str, repo_id: str, files: dict[str, bytes | str]) -> Path:
        """A repository ``kind`` (models | datasets) ``repo_id`` with ``files`` (path -> content)."""
        repo = self.root / kind / repo_id
        for name, content in files.items():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            (repo / name).write_bytes(data)
        return repo

    def add_file(self, name: str, content: bytes | str) -> str:
        """A plain file served at ``/files/<name>``; returns its URL."""
        f = self.root / "files" / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(content.encode() if isinstance(content, str) else content)
        return f"{self.url}/files/{name}"

    def tag(self, kind: str, repo_id: str, name: str) -> str:
        """Name the repository's current commit ``name``; returns the commit."""
        sha = commit_of(self.root / kind / repo_id)
        self.tags.setdefault((kind, repo_id), {})[name] = sha
        return sha

    def resolve(self, kind: str, repo_id: str, rev: str) -> str | None:
        repo = self.root / kind / repo_id
        if not repo.is_dir():
            return None
        sha = commit_of(repo)
        return sha if rev in ("main", sha) or self.tags.get((kind, repo_id), {}).get(rev) == sha else None

    def __enter__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):  # the port is closed: a client is refused at once, as by an unreachable hub
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    hub: HubStandIn

    def log_message(self, *args):  # quiet
        pass

    def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _error(self, code: int, error_code: str, head: bool):
        body = json.dumps({"error": error_code}).encode()
        self._send(code, body, {"X-Error-Code": error_code, "Content-Type": "application/json"}, head)

    def do_HEAD(self):
        self._route(head=True)

    def do_GET(self):
        self._route(head=False)

    def _route(self, head: bool):
        path = unquote(urlparse(self.path).path)
        self.hub.requests.append(f"{self.command} {path}")
        parts = path.strip("/").split("/")
        if parts[0] == "files" and (self.hub.root / path.lstrip("/")).is_file():
            return self._send(200, (self.hub.root / path.lstrip("/")).read_bytes(), {}, head)
        if parts[0] == "api" and len(parts) >= 6 and parts[1] in ("models", "datasets"):
            kind, repo_id, what, rev = parts[1], "/".join(parts[2:4]), parts[4], parts[5]
            return self._api(kind, repo_id, what, rev, "/".join(parts[6:]), head)
        kind = "datasets" if parts[0] == "datasets" else "models"
        parts = parts[1:] if kind == "datasets" else parts
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._file(kind, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), head)
        self._error(404, "EntryNotFound", head)

    def _api(self, kind, repo_id, what, rev, sub, head):
        sha = self.hub.resolve(kind, repo_id, rev)
        repo = self.hub.root / kind / repo_id
        if not repo.is_dir():
            return self._error(404, "RepoNotFound", head)
        if sha is None:
            return self._error(404, "RevisionNotFound", head)
        files = _files(repo)
        if what == "revision":
            info = {"id": repo_id, "sha": sha, "private": False, "siblings": [{"rfilename": f} for f in files]}
        elif what == "tree":
            info = [
                {
                    "type": "file",
                    "path": f,
                    "size": (repo / f).stat().st_size,
                    "oid": hashlib.sha1((repo / f).read_bytes()).hexdigest(),
                }
                for f in files
                if not sub or f.startswith(sub.rstrip("/") + "/")
            ]
        else:
            return self._error(404, "EntryNotFound", head)
        self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)

    def _file(self, kind, repo_id, rev, name, head):
        sha = self.hub.resolve(kind, repo_id, rev)
        repo = self.hub.root / kind / repo_id
        if not repo.is_dir():
            return self._error(404, "RepoNotFound", head)
        if sha is None:
            return self._error(404, "RevisionNotFound", head)
        f = repo / name
        if not f.is_file():
            return self._error(404, "EntryNotFound", head)
        data = f.read_bytes()
        etag = hashlib.sha1(data).hexdigest()
        self._send(200, data, {"X-Repo-Commit": sha, "ETag": f'"{etag}"'}, head)
