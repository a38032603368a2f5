"""A local, stdlib-only stand-in for the Hugging Face Hub HTTP API, for tests that must not touch the network.

`HubServer(storage_dir).start()` serves on http://127.0.0.1:PORT what `huggingface_hub` 2.4 (`HfApi`,
`hf_hub_download`, `snapshot_download`, `HfFileSystem`) and `datasets` 5.2 (`push_to_hub`, `load_dataset`
normal and streaming) ask for, with no Xet (set `HF_HUB_DISABLE_XET=1`, see `HubServer.env`).

Invariants:
- Every repo has a real history: each commit gets a new 40-hex id and keeps its own file map, so any past
  commit can be read with `revision=<sha>`; a commit whose `parentCommit` is not the branch head gets 412
  and changes nothing.
- Contents are stored by hash under `storage_dir`: LFS objects by sha256 (`lfs/`, only after the uploaded
  bytes hash to the announced sha256 and size), regular files by git blob sha1 (`git/`). Repo metadata is
  one JSON file per repo (`repos/`), rewritten atomically after each change; a new server on the same
  folder sees the same repos.
- Pull requests as on the Hub: a commit with `create_pr=1` opens PR #N (numbered with the repo's
  discussions) on the ref `refs/pr/N`, started from the branch head (or the header's `parentCommit`);
  more commits go to `refs/pr/N` while it is open; merging applies the PR's changes to its base branch in
  one new commit (409 when the base changed a path the PR changes too); closing leaves the base as it is.
- Unknown endpoints (and unsupported options) answer a JSON error and are recorded in
  `HubServer.unhandled`, so a test can assert that the client asked nothing unexpected.
- Thread-safe: one lock for the repo registry, one lock per repo for its refs and commits.

Endpoints (T = models|datasets|spaces, P = "" | "datasets/" | "spaces/", R = namespace/name; REV = a
branch or a 40-hex commit id, percent-encoded as one path segment):
    POST   /api/repos/create                      create (409 + url when it exists)
    DELETE /api/repos/delete                      delete
    POST   /api/validate-yaml                     README front-matter check (unclosed block -> 400)
    GET    /api/whoami-v2                         the fake user
    GET    /api/T/R[/revision/REV]                info: sha, siblings (rfilename, size, blobId, lfs)
    GET    /api/T/R/tree/REV[/PATH]               ?recursive=&expand=, paginated with a Link header
    POST   /api/T/R/paths-info/REV                form or JSON {paths, expand}
    POST   /api/T/R/preupload/REV                 uploadMode lfs|regular, shouldIgnore, oid
    POST   /api/T/R/commit/BRANCH                 NDJSON header/file/lfsFile/deletedFile/deletedFolder;
                                                  ?create_pr=1 opens a PR; BRANCH may be refs/pr/N (open)
    GET    /api/T/R/discussions/N                 a PR's details (status, base, mergeCommitId)
    POST   /api/T/R/discussions/N/merge           merge an open PR into its base branch
    POST   /api/T/R/discussions/N/status          {status: open|closed}
    GET    /api/T/R/commits/REV                   newest first, paginated
    GET    /api/T/R/refs                          branches and open PRs' refs
    POST   /api/T/R/branch/BRANCH                 {startingPoint?}, 409 when it exists
    POST   /PR.git/info/lfs/objects/batch         LFS batch API, basic transfer, upload only
    PUT    /_lfs/SHA256/SIZE                      the upload href handed out by the batch API
    GET|HEAD /PR/resolve/REV/PATH                 bytes; Range -> 206, 416 out of range; X-Repo-Commit,
                                                  ETag, and X-Linked-Etag / X-Linked-Size for LFS files

Client retries worth knowing when injecting failures with `fail_next`: `huggingface_hub` retries
408/429/500/502/503/504 with 1 s, 2 s, 4 s... back-off on preupload, the LFS batch call, LFS PUTs and tree
pages (up to 5 retries), but not on the commit call. Use a non-retried status (e.g. 403) to make those fail
fast, or `count` > 5 to exhaust the retries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

if TYPE_CHECKING:
    from typing_extensions import Self

USER = "hub-user"
"""Namespace used when `create_repo` gets a name without one, and the user `whoami-v2` reports."""

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}

LFS_THRESHOLD = 10 * 1024 * 1024
"""Files of at least this many bytes are uploaded through LFS (as on the Hub)."""

LFS_SUFFIXES = (
    ".7z", ".aac", ".arrow", ".bin", ".bmp", ".bz2", ".ckpt", ".flac", ".ftz", ".gif", ".gz", ".h5",
    ".jpeg", ".jpg", ".joblib", ".lz4", ".mkv", ".mlmodel", ".model", ".mp3", ".mp4", ".msgpack", ".npy",
    ".npz", ".ogg", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".png", ".pt", ".pth", ".rar",
    ".safetensors", ".tar", ".tflite", ".tgz", ".tiff", ".wasm", ".wav", ".webm", ".webp", ".xz", ".zip",
    ".zst",
)  # fmt: skip
"""Suffixes stored through LFS whatever their size; written into each new repo's `.gitattributes`."""

GITATTRIBUTES = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)

FAILURE_KINDS = frozenset(
    {
        "create-repo", "delete-repo", "validate-yaml", "whoami", "info", "tree", "paths-info", "preupload",
        "commit", "commits", "refs", "branch", "lfs-batch", "lfs-upload", "resolve", "discussion",
        "merge", "discussion-status",
    }
)  # fmt: skip
"""Endpoint names accepted by `HubServer.fail_next`."""

MAX_BODY = 512 * 1024 * 1024
"""Largest request body read into memory (bytes); LFS uploads are streamed to disk instead."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]{7,40}$")
_SEG = r"([^/]+)"


def git_blob_oid(data: bytes) -> str:
    """The git object id (sha1) of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file stored in git in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class HubFile:
    """One file of a commit. `oid` is its git blob id (of the pointer for LFS files); `sha256` is set
    only for LFS files; `size` is the content size in bytes."""

    size: int
    oid: str
    sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "oid": self.oid, "sha256": self.sha256}


@dataclass(frozen=True)
class HubCommit:
    """One commit; `files` (path -> HubFile) is the full tree at this commit and is never mutated."""

    id: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, HubFile]


@dataclass(frozen=True)
class HubRequest:
    """One request the server answered (path includes the query string)."""

    method: str
    path: str
    status: int


@dataclass
class _Failure:
    kind: str
    status: int
    remaining: int
    repo: str | None
    message: str
    skip: int = 0  # matching requests let through first


@dataclass
class _Repo:
    type: str
    id: str
    created_at: str
    extra: dict[str, Any]
    commits: dict[str, HubCommit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)  # includes "refs/pr/N" of PRs
    prs: dict[int, dict[str, Any]] = field(default_factory=dict)  # N -> title, base, start, status, merge
    lock: threading.Lock = field(default_factory=threading.Lock)


class HubError(Exception):
    """An error answered as JSON `{"error": message}` with the Hub's `X-Error-Code` header when set."""

    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


class _Body:
    """A request body read at most once, from `Content-Length` or chunked transfer encoding."""

    def __init__(self, rfile: Any, headers: Any) -> None:
        self._rfile = rfile
        self._chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        self._left = 0 if self._chunked else int(headers.get("Content-Length") or 0)
        self._done = False
        self.complete = False
        """True once the whole body has been read (else the connection cannot be reused)."""

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        if self._done:
            return
        self._done = True
        if not self._chunked:
            while self._left > 0:
                data = self._rfile.read(min(size, self._left))
                if not data:
                    raise ConnectionError("client closed the connection mid-body")
                self._left -= len(data)
                yield data
            self.complete = True
            return
        while True:
            line = self._rfile.readline(65537)
            length = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if length == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self.complete = True
                return
            while length > 0:
                data = self._rfile.read(min(size, length))
                if not data:
                    raise ConnectionError("client closed the connection mid-body")
                length -= len(data)
                yield data
            self._rfile.readline(3)

    def read(self) -> bytes:
        out = bytearray()
        for chunk in self.chunks():
            out += chunk
            if len(out) > MAX_BODY:
                raise HubError(413, f"request body larger than {MAX_BODY} bytes")
        return bytes(out)

    def drain(self) -> None:
        for _ in self.chunks():
            pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hub: HubServer

    def __init__(self, hub: HubServer) -> None:
        self.hub = hub
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hub._dispatch(self, "GET")

    def do_HEAD(self) -> None:
        self.server.hub._dispatch(self, "HEAD")

    def do_POST(self) -> None:
        self.server.hub._dispatch(self, "POST")

    def do_PUT(self) -> None:
        self.server.hub._dispatch(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.hub._dispatch(self, "DELETE")

    def do_PATCH(self) -> None:
        self.server.hub._dispatch(self, "PATCH")


@dataclass
class _Reply:
    """What a route answers: `body` is bytes, or (path, start, end) to stream a file slice (end exclusive)."""

    status: int = 200
    body: bytes | tuple[Path, int, int] = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(data).encode(), "application/json", headers or {})


_T = r"(models|datasets|spaces)"
_R = rf"{_SEG}/{_SEG}"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(pattern), name)
    for method, pattern, name in [
        ("POST", r"^/api/repos/create$", "create-repo"),
        ("DELETE", r"^/api/repos/delete$", "delete-repo"),
        ("POST", r"^/api/validate-yaml$", "validate-yaml"),
        ("GET", r"^/api/whoami-v2$", "whoami"),
        ("GET", rf"^/api/{_T}/{_R}$", "info"),
        ("GET", rf"^/api/{_T}/{_R}/revision/{_SEG}$", "info"),
        ("GET", rf"^/api/{_T}/{_R}/tree/{_SEG}(/.*)?$", "tree"),
        ("POST", rf"^/api/{_T}/{_R}/paths-info/{_SEG}$", "paths-info"),
        ("POST", rf"^/api/{_T}/{_R}/preupload/{_SEG}$", "preupload"),
        ("POST", rf"^/api/{_T}/{_R}/commit/{_SEG}$", "commit"),
        ("GET", rf"^/api/{_T}/{_R}/commits/{_SEG}$", "commits"),
        ("GET", rf"^/api/{_T}/{_R}/refs$", "refs"),
        ("POST", rf"^/api/{_T}/{_R}/branch/(.+)$", "branch"),
        ("GET", rf"^/api/{_T}/{_R}/discussions/([0-9]+)$", "discussion"),
        ("POST", rf"^/api/{_T}/{_R}/discussions/([0-9]+)/merge$", "merge"),
        ("POST", rf"^/api/{_T}/{_R}/discussions/([0-9]+)/status$", "discussion-status"),
        ("POST", rf"^/(?:(datasets|spaces)/)?{_SEG}/{_SEG}\.git/info/lfs/objects/batch$", "lfs-batch"),
        ("PUT", r"^/_lfs/([0-9a-f]{64})/([0-9]+)$", "lfs-upload"),
        ("GET", rf"^/(?:(datasets|spaces)/)?{_R}/resolve/{_SEG}/(.+)$", "resolve"),
        ("HEAD", rf"^/(?:(datasets|spaces)/)?{_R}/resolve/{_SEG}/(.+)$", "resolve"),
    ]
]


class HubServer:
    """A Hub-compatible HTTP server on 127.0.0.1 keeping its repos under `storage_dir`.

    Use as `with HubServer(tmp) as hub: ...` or `hub.start()` / `hub.stop()`; point clients at it with
    `hub.env()`. Inspect what was stored with `files`, `history`, `head`; make requests fail with
    `fail_next`; check `unhandled` (requests it could not answer) and `errors` (its own tracebacks).
    """

    def __init__(self, storage_dir: str | os.PathLike[str]) -> None:
        self.storage = Path(storage_dir)
        for sub in ("lfs", "git", "repos", "tmp"):
            (self.storage / sub).mkdir(parents=True, exist_ok=True)
        self.tree_page_size = 1000
        """Entries per tree page (the Hub pages by 1000, by 50 with expand)."""
        self.tree_expand_page_size = 50
        self.commits_page_size = 50
        self.requests: list[HubRequest] = []
        self.unhandled: list[str] = []
        self.errors: list[str] = []
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._registry_lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._failures_lock = threading.Lock()
        self._counter = 0
        self._counter_lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._load()

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving in a background thread (idempotent); returns self."""
        if self._httpd is None:
            self._httpd = _HTTPServer(self)
            self._thread = threading.Thread(target=self._httpd.serve_forever, name="hubserver", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open client connections; stored repos stay on disk."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with httpd.connections_lock:
            for conn in list(httpd.connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("HubServer is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Environment variables a client process needs to talk to this server and nothing else.

        A process loading datasets must also set `datasets.config.USE_PARQUET_EXPORT = False` (no env var
        exists for it), else `load_dataset` asks a `datasets-server` host for Parquet-export infos.
        """
        no_proxy = ",".join(x for x in (os.environ.get("NO_PROXY", ""), "127.0.0.1,localhost") if x)
        return {
            "HF_ENDPOINT": self.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_OFFLINE": "0",
            "HF_DATASETS_OFFLINE": "0",
            "HF_TOKEN": "hf_fake",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_UPDATE_DOWNLOAD_COUNTS": "0",
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    # ---- test helpers ----------------------------------------------------------------------------------

    def fail_next(
        self,
        kind: str,
        status: int = 500,
        count: int = 1,
        repo_id: str | None = None,
        message: str = "injected failure",
        after: int = 0,
    ) -> None:
        """Answer the next `count` requests of endpoint `kind` (see FAILURE_KINDS), optionally only those
        about `repo_id`, with `status` and a JSON error, before doing anything else; with `after`, let that
        many matching requests through first (e.g. fail the third commit of a push: `after=2`)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; expected one of {sorted(FAILURE_KINDS)}")
        if count < 1 or not 400 <= status <= 599:
            raise ValueError(f"count must be >= 1 and status 4xx/5xx, got count={count} status={status}")
        with self._failures_lock:
            self._failures.append(_Failure(kind, status, count, repo_id, message, skip=max(0, after)))

    def pending_failures(self) -> int:
        """How many injected failures have not been served yet."""
        with self._failures_lock:
            return sum(f.remaining for f in self._failures)

    def clear_log(self) -> None:
        """Forget recorded requests, unhandled requests, server errors and pending failures."""
        self.requests.clear()
        self.unhandled.clear()
        self.errors.clear()
        with self._failures_lock:
            self._failures.clear()

    def repo_exists(self, repo_id: str, repo_type: str = "dataset") -> bool:
        with self._registry_lock:
            return (repo_type, repo_id) in self._repos

    def head(self, repo_id: str, repo_type: str = "dataset", branch: str = "main") -> str:
        """The commit id `branch` points to."""
        repo = self._repo(repo_type, repo_id)
        with repo.lock:
            return self._resolve(repo, branch).id

    def pull_requests(self, repo_id: str, repo_type: str = "dataset") -> dict[int, dict[str, Any]]:
        """Every PR: {N: {"title", "base", "start", "status" (open|merged|closed), "merge" (commit id)}}."""
        repo = self._repo(repo_type, repo_id)
        with repo.lock:
            return {n: dict(pr) for n, pr in repo.prs.items()}

    def history(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> list[HubCommit]:
        """Commits reachable from `revision`, newest first (the last one is the repo's initial commit)."""
        repo = self._repo(repo_type, repo_id)
        with repo.lock:
            return list(self._ancestry(repo, self._resolve(repo, revision)))

    def files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> dict[str, bytes]:
        """Every file at `revision` as {path: content}, sorted by path (includes `.gitattributes`)."""
        repo = self._repo(repo_type, repo_id)
        with repo.lock:
            commit = self._resolve(repo, revision)
        return {path: self._read_all(entry) for path, entry in sorted(commit.files.items())}

    def lfs_objects(self) -> set[str]:
        """sha256 of every LFS object stored (uploaded and verified), referenced or not."""
        return {p.name for p in (self.storage / "lfs").iterdir()}

    # ---- storage ---------------------------------------------------------------------------------------

    def _repo_file(self, repo_type: str, repo_id: str) -> Path:
        return self.storage / "repos" / f"{repo_type}s" / f"{repo_id}.json"

    def _load(self) -> None:
        for path in sorted((self.storage / "repos").glob("*/*/*.json")):
            data = json.loads(path.read_text())
            repo = _Repo(data["type"], data["id"], data["created_at"], data.get("extra", {}))
            for c in data["commits"]:
                files = {p: HubFile(**f) for p, f in c["files"].items()}
                repo.commits[c["id"]] = HubCommit(
                    c["id"], c["parent"], c["title"], c["message"], c["date"], files
                )
            repo.branches = dict(data["branches"])
            repo.prs = {int(n): pr for n, pr in data.get("prs", {}).items()}
            self._repos[(repo.type, repo.id)] = repo

    def _save(self, repo: _Repo) -> None:
        """Write the repo's metadata atomically (caller holds repo.lock)."""
        data = {
            "type": repo.type,
            "id": repo.id,
            "created_at": repo.created_at,
            "extra": repo.extra,
            "branches": repo.branches,
            "prs": {str(n): pr for n, pr in repo.prs.items()},
            "commits": [
                {
                    "id": c.id,
                    "parent": c.parent,
                    "title": c.title,
                    "message": c.message,
                    "date": c.date,
                    "files": {p: f.to_json() for p, f in c.files.items()},
                }
                for c in repo.commits.values()
            ],
        }
        target = self._repo_file(repo.type, repo.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, target)

    def _blob_path(self, entry: HubFile) -> Path:
        if entry.sha256 is not None:
            return self.storage / "lfs" / entry.sha256
        return self.storage / "git" / entry.oid

    def _read_all(self, entry: HubFile) -> bytes:
        return self._blob_path(entry).read_bytes()

    def _store_regular(self, data: bytes) -> HubFile:
        oid = git_blob_oid(data)
        target = self.storage / "git" / oid
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=self.storage / "tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        return HubFile(size=len(data), oid=oid)

    def _new_commit_id(self, repo: _Repo, parent: str | None, title: str) -> str:
        with self._counter_lock:
            self._counter += 1
            counter = self._counter
        seed = f"{repo.type}/{repo.id}\n{parent}\n{title}\n{time.time_ns()}\n{counter}\n{id(self)}"
        return hashlib.sha1(seed.encode()).hexdigest()

    def _add_commit(
        self,
        repo: _Repo,
        branch: str,
        parent: str | None,
        title: str,
        message: str,
        files: dict[str, HubFile],
    ) -> HubCommit:
        """Record a commit and move `branch` to it (caller holds repo.lock)."""
        commit = HubCommit(self._new_commit_id(repo, parent, title), parent, title, message, _now(), files)
        repo.commits[commit.id] = commit
        repo.branches[branch] = commit.id
        self._save(repo)
        return commit

    # ---- lookups ---------------------------------------------------------------------------------------

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        with self._registry_lock:
            repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def _resolve(self, repo: _Repo, revision: str) -> HubCommit:
        """The commit a branch name or a (full or >= 7 hex) commit id names."""
        sha = repo.branches.get(revision)
        if sha is None and _HEX.match(revision):
            matches = [c for c in repo.commits if c.startswith(revision)]
            sha = matches[0] if len(matches) == 1 else None
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return repo.commits[sha]

    def _ancestry(self, repo: _Repo, commit: HubCommit) -> Iterator[HubCommit]:
        current: HubCommit | None = commit
        while current is not None:
            yield current
            current = repo.commits[current.parent] if current.parent is not None else None

    def _last_commits(self, repo: _Repo, commit: HubCommit, wanted: set[str]) -> dict[str, HubCommit]:
        """For each wanted path (file or directory), the newest commit that changed it or something below."""
        found: dict[str, HubCommit] = {}
        for c in self._ancestry(repo, commit):
            parent_files = repo.commits[c.parent].files if c.parent is not None else {}
            changed = {
                p for p in c.files.keys() | parent_files.keys() if c.files.get(p) != parent_files.get(p)
            }
            for path in changed:
                parts = path.split("/")
                for i in range(1, len(parts) + 1):
                    prefix = "/".join(parts[:i])
                    if prefix in wanted and prefix not in found:
                        found[prefix] = c
            if len(found) == len(wanted):
                break
        return found

    # ---- HTTP plumbing ---------------------------------------------------------------------------------

    def _take_failure(self, kind: str, repo_id: str | None) -> _Failure | None:
        with self._failures_lock:
            for failure in self._failures:
                if failure.kind == kind and failure.remaining > 0 and failure.repo in (None, repo_id):
                    if failure.skip > 0:
                        failure.skip -= 1
                        return None
                    failure.remaining -= 1
                    return failure
        return None

    def _dispatch(self, handler: _Handler, method: str) -> None:
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        body = _Body(handler.rfile, handler.headers)
        try:
            try:
                reply = self._route(handler, method, split.path, query, body)
            finally:
                body.drain()
        except HubError as err:
            headers = dict(err.headers)
            if err.code:
                headers["X-Error-Code"] = err.code
            headers["X-Error-Message"] = " ".join(err.message.encode("ascii", "replace").decode().split())
            reply = _json({"error": err.message}, err.status, headers)
        except ConnectionError:
            handler.close_connection = True
            return
        except Exception:
            self.errors.append(f"{method} {handler.path}\n{traceback.format_exc()}")
            reply = _json({"error": "internal error of the test hub server (see HubServer.errors)"}, 500)
        if not body.complete:
            handler.close_connection = True
        self.requests.append(HubRequest(method, handler.path, reply.status))
        self._send(handler, method, reply)

    def _send(self, handler: _Handler, method: str, reply: _Reply) -> None:
        if isinstance(reply.body, tuple):
            path, start, end = reply.body
            length = end - start
        else:
            length = len(reply.body)
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(length))
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        if handler.close_connection:
            handler.send_header("Connection", "close")
        handler.end_headers()
        if method == "HEAD":
            return
        try:
            if isinstance(reply.body, tuple):
                with open(path, "rb") as f:
                    f.seek(start)
                    left = length
                    while left > 0:
                        data = f.read(min(1 << 20, left))
                        if not data:
                            raise OSError(f"{path} is shorter than recorded")
                        handler.wfile.write(data)
                        left -= len(data)
            else:
                handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    def _unhandled(self, method: str, path: str, why: str, status: int = 404) -> HubError:
        self.unhandled.append(f"{method} {path}")
        return HubError(status, f"{why}: {method} {path} (not implemented by the test hub server)")

    def _route(
        self, handler: _Handler, method: str, raw_path: str, query: dict[str, list[str]], body: _Body
    ) -> _Reply:
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(raw_path)
            if match is None or route_method != method:
                continue
            groups = match.groups()
            repo_id = None
            if name not in ("create-repo", "delete-repo", "validate-yaml", "whoami", "lfs-upload"):
                repo_id = f"{unquote(groups[1])}/{unquote(groups[2])}"
            failure = self._take_failure(name, repo_id)
            if failure is not None:
                raise HubError(failure.status, failure.message)
            return getattr(self, "_api_" + name.replace("-", "_"))(handler, groups, query, body)
        raise self._unhandled(method, handler.path, "Unknown endpoint")

    @staticmethod
    def _require_token(handler: _Handler) -> None:
        if not handler.headers.get("Authorization", "").startswith("Bearer "):
            raise HubError(401, "Invalid username or password.")

    @staticmethod
    def _flag(query: dict[str, list[str]], name: str) -> bool:
        return any(v.lower() in ("1", "true") for v in query.get(name, []))

    def _json_body(self, body: _Body) -> Any:
        try:
            return json.loads(body.read() or b"{}")
        except ValueError as err:
            raise HubError(400, f"request body is not JSON: {err}") from None

    def _typed_repo(self, groups: tuple[str | None, ...]) -> _Repo:
        return self._repo(
            REPO_TYPES[groups[0] or "models"], f"{unquote(groups[1] or '')}/{unquote(groups[2] or '')}"
        )

    def _repo_url(self, repo: _Repo) -> str:
        return f"{self.url}/{URL_PREFIXES[repo.type]}{repo.id}"

    def _page(self, handler: _Handler, items: list[Any], size: int) -> tuple[list[Any], dict[str, str]]:
        """One page of `items` from the `cursor` query offset, with a Link header to the next page."""
        split = urlsplit(handler.path)
        query = parse_qs(split.query, keep_blank_values=True)
        try:
            start = int(query.pop("cursor", ["0"])[0])
        except ValueError:
            raise HubError(400, "invalid cursor") from None
        page = items[start : start + size]
        headers = {}
        if start + size < len(items):
            query["cursor"] = [str(start + size)]
            headers["Link"] = f'<{self.url}{split.path}?{urlencode(query, doseq=True)}>; rel="next"'
        return page, headers

    # ---- endpoints: repos ------------------------------------------------------------------------------

    def _api_create_repo(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        self._require_token(handler)
        payload = self._json_body(body)
        repo_type = payload.get("type") or "model"
        if repo_type not in URL_PREFIXES:
            raise HubError(400, f"Invalid repo type: {repo_type!r}")
        namespace, name = payload.get("organization") or USER, payload.get("name") or ""
        for part in (namespace, name):
            if not _NAME.match(part) or ".." in part or "--" in part:
                raise HubError(400, f"Invalid repo name: {namespace}/{name}")
        repo_id = f"{namespace}/{name}"
        url = f"{self.url}/{URL_PREFIXES[repo_type]}{repo_id}"
        attributes = self._store_regular(GITATTRIBUTES.encode())
        with self._registry_lock:
            if (repo_type, repo_id) in self._repos:
                return _json({"error": f"You already created this {repo_type} repo", "url": url}, 409)
            extra = {k: payload[k] for k in ("sdk", "visibility", "private") if k in payload}
            repo = _Repo(repo_type, repo_id, _now(), extra)
            with repo.lock:
                self._add_commit(repo, "main", None, "initial commit", "", {".gitattributes": attributes})
            self._repos[(repo_type, repo_id)] = repo
        return _json({"url": url, "name": repo_id, "id": repo_id})

    def _api_delete_repo(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        self._require_token(handler)
        payload = self._json_body(body)
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or USER}/{payload.get('name')}"
        with self._registry_lock:
            repo = self._repos.pop((repo_type, repo_id), None)
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        with repo.lock:
            self._repo_file(repo_type, repo_id).unlink(missing_ok=True)
        return _json({})

    def _api_validate_yaml(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        content = str(self._json_body(body).get("content", ""))
        lines = content.splitlines()
        if lines and lines[0].strip() == "---" and not any(line.strip() == "---" for line in lines[1:]):
            return _json({"errors": [{"message": "README.md metadata block is not closed by '---'"}]}, 400)
        return _json({"errors": [], "warnings": []})

    def _api_whoami(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        self._require_token(handler)
        return _json(
            {
                "type": "user",
                "id": hashlib.sha1(USER.encode()).hexdigest()[:24],
                "name": USER,
                "fullname": USER,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "fake", "role": "write"}},
            }
        )

    def _api_info(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        repo = self._typed_repo(groups)
        with repo.lock:
            commit = self._resolve(repo, unquote(groups[3]) if len(groups) > 3 else "main")
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path, "size": entry.size, "blobId": entry.oid}
            if entry.sha256 is not None:
                pointer = len(lfs_pointer(entry.sha256, entry.size))
                sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size, "pointerSize": pointer}
            siblings.append(sibling)
        namespace = repo.id.split("/")[0]
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.type}/{repo.id}".encode()).hexdigest()[:24],
            "id": repo.id,
            "author": namespace,
            "sha": commit.id,
            "createdAt": repo.created_at,
            "lastModified": commit.date,
            "private": repo.extra.get("visibility") == "private" or bool(repo.extra.get("private")),
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(entry.size for entry in commit.files.values()),
        }
        if repo.type == "space":
            info["sdk"] = repo.extra.get("sdk")
        return _json(info)

    def _api_refs(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        repo = self._typed_repo(groups)
        with repo.lock:
            branches = [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha}
                for name, sha in sorted(repo.branches.items())
                if not name.startswith("refs/")
            ]
            prs = [
                {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": repo.branches[f"refs/pr/{n}"]}
                for n, pr in sorted(repo.prs.items())
                if pr["status"] == "open"
            ]
        return _json({"branches": branches, "converts": [], "tags": [], "pullRequests": prs})

    def _api_branch(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        self._require_token(handler)
        repo = self._typed_repo(groups)
        branch = unquote(groups[3])
        payload = self._json_body(body)
        if not branch or branch.startswith("refs/") or any(p in ("", ".", "..") for p in branch.split("/")):
            raise HubError(400, f"Invalid branch name: {branch!r}")
        with repo.lock:
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            start = self._resolve(repo, str(payload.get("startingPoint") or "main"))
            repo.branches[branch] = start.id
            self._save(repo)
        return _json({})

    # ---- endpoints: listing ----------------------------------------------------------------------------

    def _entries(
        self, repo: _Repo, commit: HubCommit, paths: list[str], expand: bool
    ) -> list[dict[str, Any]]:
        """Tree entries for existing files and directories among `paths` (missing paths are skipped)."""
        dirs: dict[str, list[tuple[str, HubFile]]] = {}
        for path, entry in commit.files.items():
            parts = path.split("/")
            for i in range(1, len(parts)):
                dirs.setdefault("/".join(parts[:i]), []).append((path, entry))
        found = [p for p in paths if p in commit.files or p in dirs]
        last = self._last_commits(repo, commit, set(found)) if expand else {}
        out = []
        for path in found:
            if path in commit.files:
                entry = commit.files[path]
                item: dict[str, Any] = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
                if entry.sha256 is not None:
                    pointer = len(lfs_pointer(entry.sha256, entry.size))
                    item["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": pointer}
            else:
                listing = "".join(f"{p} {e.oid}\n" for p, e in sorted(dirs[path]))
                item = {"type": "directory", "oid": hashlib.sha1(listing.encode()).hexdigest(), "size": 0}
                item["path"] = path
            if expand:
                c = last[path]
                item["lastCommit"] = {"id": c.id, "title": c.title, "date": c.date}
            out.append(item)
        return out

    def _api_tree(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        repo = self._typed_repo(groups)
        prefix = unquote(groups[4] or "").strip("/")
        recursive, expand = self._flag(query, "recursive"), self._flag(query, "expand")
        with repo.lock:
            commit = self._resolve(repo, unquote(groups[3]))
        if prefix in commit.files:
            paths = [prefix]
        else:
            below = sorted(p for p in commit.files if not prefix or p.startswith(prefix + "/"))
            if prefix and not below:
                raise HubError(
                    404,
                    f"{prefix} does not exist on {commit.id}",
                    "EntryNotFound",
                    {"X-Repo-Commit": commit.id},
                )
            start = len(prefix) + 1 if prefix else 0
            names: set[str] = set()
            for path in below:
                parts = path[start:].split("/")
                depth = len(parts) if recursive else 1
                for i in range(1, depth + 1):
                    names.add(path[:start] + "/".join(parts[:i]))
            paths = sorted(names)
        size = self.tree_expand_page_size if expand else self.tree_page_size
        page, headers = self._page(handler, paths, size)
        return _json(self._entries(repo, commit, page, expand), headers=headers)

    def _api_paths_info(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        repo = self._typed_repo(groups)
        raw = body.read()
        if handler.headers.get("Content-Type", "").startswith("application/json"):
            payload = json.loads(raw or b"{}")
            paths, expand = payload.get("paths", []), bool(payload.get("expand"))
        else:
            form = parse_qs(raw.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), self._flag(form, "expand")
        if isinstance(paths, str):
            paths = [paths]
        wanted = list(dict.fromkeys(str(p).strip("/") for p in paths))
        with repo.lock:
            commit = self._resolve(repo, unquote(groups[3]))
        return _json(self._entries(repo, commit, [p for p in wanted if p], expand))

    def _api_commits(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        repo = self._typed_repo(groups)
        with repo.lock:
            commits = list(self._ancestry(repo, self._resolve(repo, unquote(groups[3]))))
        page, headers = self._page(handler, commits, self.commits_page_size)
        items = [
            {
                "id": c.id,
                "title": c.title,
                "message": c.message,
                "authors": [{"user": USER, "avatar": None}],
                "date": c.date,
            }
            for c in page
        ]
        return _json(items, headers=headers)

    # ---- endpoints: uploads ----------------------------------------------------------------------------

    def _api_preupload(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        self._require_token(handler)
        repo = self._typed_repo(groups)  # with create_pr=1: the same answer, for the PR's base revision
        payload = self._json_body(body)
        with repo.lock:
            commit = self._resolve(repo, unquote(groups[3]))
        files = []
        for item in payload.get("files", []):
            path = str(item.get("path", ""))
            sample = base64.b64decode(item.get("sample", ""))
            lfs = int(item.get("size", 0)) >= LFS_THRESHOLD or b"\0" in sample[:512]
            lfs = lfs or path.lower().endswith(LFS_SUFFIXES)
            existing = commit.files.get(path)
            oid = None if existing is None else (existing.sha256 or existing.oid)
            files.append(
                {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        return _json({"files": files, "commitOid": commit.id})

    def _api_lfs_batch(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        self._require_token(handler)
        self._typed_repo(groups)
        payload = self._json_body(body)
        if payload.get("operation") != "upload":
            raise self._unhandled("POST", handler.path, f"LFS operation {payload.get('operation')!r}", 501)
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not _SHA256.match(oid) or not isinstance(size, int) or size < 0:
                objects.append(
                    {
                        "oid": str(oid),
                        "size": size if isinstance(size, int) else -1,
                        "error": {"code": 422, "message": "invalid oid or size"},
                    }
                )
                continue
            stored = self.storage / "lfs" / oid
            if stored.exists() and stored.stat().st_size == size:
                objects.append({"oid": oid, "size": size, "authenticated": True})
            else:
                href = f"{self.url}/_lfs/{oid}/{size}"
                objects.append(
                    {"oid": oid, "size": size, "authenticated": True, "actions": {"upload": {"href": href}}}
                )
        reply = _json({"transfer": "basic", "objects": objects, "hash_algo": "sha256"})
        reply.content_type = "application/vnd.git-lfs+json"
        return reply

    def _api_lfs_upload(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        oid, size = groups[0], int(groups[1])
        digest = hashlib.sha256()
        received = 0
        fd, tmp = tempfile.mkstemp(dir=self.storage / "tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in body.chunks():
                    digest.update(chunk)
                    received += len(chunk)
                    f.write(chunk)
            if received != size or digest.hexdigest() != oid:
                raise HubError(
                    400,
                    f"uploaded bytes do not match: got {received} bytes sha256 {digest.hexdigest()}, "
                    f"expected {size} bytes sha256 {oid}",
                )
            os.replace(tmp, self.storage / "lfs" / oid)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return _Reply(200, b"", "text/plain", {"ETag": f'"{oid}"'})

    def _api_commit(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        self._require_token(handler)
        repo = self._typed_repo(groups)
        branch = unquote(groups[3])
        create_pr = self._flag(query, "create_pr")
        try:
            lines = [json.loads(line) for line in body.read().splitlines() if line.strip()]
        except ValueError as err:
            raise HubError(400, f"commit payload is not NDJSON: {err}") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0].get("value", {})
        title = str(header.get("summary") or "")
        if not title:
            raise HubError(400, "commit summary is empty")
        # Prepare additions before taking the lock: content-addressed, harmless if the commit fails.
        ops: list[tuple[str, str, HubFile | None]] = []
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value", {})
            path = self._valid_path(value.get("path", ""), key == "deletedFolder")
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"unsupported encoding for {path}: {value.get('encoding')!r}")
                try:
                    data = base64.b64decode(value.get("content", ""), validate=True)
                except ValueError:
                    raise HubError(400, f"content of {path} is not base64") from None
                ops.append(("add", path, self._store_regular(data)))
            elif key == "lfsFile":
                oid = str(value.get("oid", ""))
                stored = self.storage / "lfs" / oid
                if value.get("algo", "sha256") != "sha256" or not _SHA256.match(oid) or not stored.exists():
                    raise HubError(422, f"LFS object {oid} for {path} was not uploaded")
                size = stored.stat().st_size
                if value.get("size") is not None and int(value["size"]) != size:
                    raise HubError(422, f"LFS object {oid} for {path} has size {size}, not {value['size']}")
                ops.append(("add", path, HubFile(size, git_blob_oid(lfs_pointer(oid, size)), oid)))
            elif key in ("deletedFile", "deletedFolder"):
                ops.append((key, path, None))
            else:
                raise self._unhandled("POST", handler.path, f"Commit operation {key!r} is not supported", 501)
        with repo.lock:
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch} (commits go to a branch)", "RevisionNotFound")
            parent = header.get("parentCommit")
            pr_num = self._open_pr_of(repo, branch)
            if create_pr:
                if pr_num is not None:
                    raise HubError(400, f"create_pr on a PR ref: {branch}")
                start = self._resolve(repo, str(parent)) if parent else repo.commits[repo.branches[branch]]
                pr_num = len(repo.prs) + 1
                repo.prs[pr_num] = {"title": title, "base": branch, "start": start.id, "status": "open",
                                    "merge": None}  # fmt: skip
                branch, parent = f"refs/pr/{pr_num}", None
                repo.branches[branch] = start.id
            head = repo.commits[repo.branches[branch]]
            if parent is not None and not (len(str(parent)) >= 7 and head.id.startswith(str(parent))):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for op, path, entry in ops:
                if op == "add":
                    files[path] = entry  # type: ignore[assignment]
                elif op == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                else:
                    gone = [p for p in files if p.startswith(path + "/")]
                    if not gone:
                        raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in gone:
                        del files[p]
            dirs = {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}
            clash = sorted(dirs & files.keys())
            if clash:
                raise HubError(400, f"path is both a file and a folder: {clash[0]}")
            commit = self._add_commit(
                repo, branch, head.id, title, str(header.get("description") or ""), files
            )
        url = f"{self._repo_url(repo)}/commit/{commit.id}"
        answer = {"success": True, "commitOid": commit.id, "commitUrl": url, "commitMessage": title,
                  "hookOutput": ""}  # fmt: skip
        if pr_num is not None:
            answer["pullRequestUrl"] = f"{self._repo_url(repo)}/discussions/{pr_num}"
        return _json(answer)

    @staticmethod
    def _open_pr_of(repo: _Repo, ref: str) -> int | None:
        """The number of the PR whose ref is `ref` (404 unless it is open), None for a branch."""
        match = re.fullmatch(r"refs/pr/([0-9]+)", ref)
        if match is None:
            return None
        pr = repo.prs.get(int(match.group(1)))
        if pr is None or pr["status"] != "open":
            raise HubError(403, f"pull request {ref} is not open", "PullRequestNotOpen")
        return int(match.group(1))

    # ---- endpoints: pull requests ----------------------------------------------------------------------

    def _pr(self, groups: tuple) -> tuple[_Repo, int]:
        repo = self._typed_repo(groups)
        num = int(groups[3])
        if num not in repo.prs:
            raise HubError(404, f"Discussion not found: #{num}", "DiscussionNotFound")
        return repo, num

    def _event(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        with self._counter_lock:
            self._counter += 1
            counter = self._counter
        return {"id": f"{counter:024x}", "type": kind, "createdAt": _now(), "author": {"name": USER},
                "data": data}  # fmt: skip

    def _api_discussion(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        repo, num = self._pr(groups)
        with repo.lock:
            pr = dict(repo.prs[num])
        return _json(
            {
                "num": num, "title": pr["title"], "status": pr["status"], "isPullRequest": True,
                "createdAt": _now(), "author": {"name": USER}, "repo": {"name": repo.id, "type": repo.type},
                "events": [], "filesWithConflicts": [], "diff": "",
                "changes": {"base": f"refs/heads/{pr['base']}", "mergeCommitId": pr["merge"]},
            }
        )  # fmt: skip

    def _api_merge(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        """Apply the PR's changes (its head against its start) to the base head in one commit."""
        self._require_token(handler)
        repo, num = self._pr(groups)
        with repo.lock:
            pr = repo.prs[num]
            if pr["status"] != "open":
                raise HubError(403, f"pull request #{num} is {pr['status']}, not open")
            start = repo.commits[pr["start"]].files
            ours = repo.commits[repo.branches[f"refs/pr/{num}"]].files
            base = repo.commits[repo.branches[pr["base"]]]
            changed = {p for p in start.keys() | ours.keys() if start.get(p) != ours.get(p)}
            theirs = {p for p in start.keys() | base.files.keys() if start.get(p) != base.files.get(p)}
            conflicts = sorted(p for p in changed & theirs if ours.get(p) != base.files.get(p))
            if conflicts:
                raise HubError(409, f"merge conflict in {len(conflicts)} file(s): {', '.join(conflicts[:5])}")
            files = dict(base.files)
            for path in changed:
                if path in ours:
                    files[path] = ours[path]
                else:
                    files.pop(path, None)
            commit = self._add_commit(
                repo, pr["base"], base.id, f"Merge pull request #{num}", pr["title"], files
            )
            pr.update(status="merged", merge=commit.id)
            del repo.branches[f"refs/pr/{num}"]
            self._save(repo)
        return _json({"newStatus": self._event("status-change", {"status": "merged"})})

    def _api_discussion_status(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        self._require_token(handler)
        repo, num = self._pr(groups)
        status = self._json_body(body).get("status")
        if status not in ("open", "closed"):
            raise HubError(400, f"invalid status {status!r}")
        with repo.lock:
            pr = repo.prs[num]
            if pr["status"] == "merged":
                raise HubError(403, f"pull request #{num} is merged")
            ref = f"refs/pr/{num}"
            if status == "closed":
                pr["tip"] = repo.branches.pop(ref, pr.get("tip"))
            elif pr["status"] == "closed":
                repo.branches[ref] = pr.pop("tip")
            pr["status"] = status
            self._save(repo)
        return _json({"newStatus": self._event("status-change", {"status": status})})

    @staticmethod
    def _valid_path(path: Any, folder: bool = False) -> str:
        text = str(path)
        if folder:
            text = text.rstrip("/")
        parts = text.split("/")
        if not text or text.startswith("/") or "\0" in text or any(p in ("", ".", "..") for p in parts):
            raise HubError(400, f"invalid path in repo: {path!r}")
        if parts[0] == ".git":
            raise HubError(400, f"cannot write under .git/: {path!r}")
        return text

    # ---- endpoints: downloads --------------------------------------------------------------------------

    def _api_resolve(self, handler: _Handler, groups: tuple, query: dict, body: _Body) -> _Reply:
        repo = self._typed_repo(groups)
        path = unquote(groups[4])
        with repo.lock:
            commit = self._resolve(repo, unquote(groups[3]))
        entry = commit.files.get(path)
        base = {"X-Repo-Commit": commit.id, "Accept-Ranges": "bytes"}
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", base)
        etag = f'"{entry.sha256 or entry.oid}"'
        headers = {**base, "ETag": etag}
        if entry.sha256 is not None:
            headers.update({"X-Linked-Etag": etag, "X-Linked-Size": str(entry.size)})
        blob = self._blob_path(entry)
        span = self._range(handler.headers.get("Range"), entry.size)
        if span is None:
            return _Reply(200, (blob, 0, entry.size), "application/octet-stream", headers)
        if span == (-1, -1):
            headers["Content-Range"] = f"bytes */{entry.size}"
            return _json({"error": "Requested Range Not Satisfiable"}, 416, headers)
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
        return _Reply(206, (blob, start, end), "application/octet-stream", headers)

    @staticmethod
    def _range(header: str | None, size: int) -> tuple[int, int] | None:
        """(start, end exclusive) for a single-range `Range` header; None to serve it all (no, malformed or
        multi-range header, which RFC 9110 lets a server ignore); (-1, -1) when unsatisfiable."""
        if not header or not header.startswith("bytes=") or "," in header:
            return None
        first, _, last = header[len("bytes=") :].strip().partition("-")
        try:
            if first == "":
                suffix = int(last)
                return (-1, -1) if suffix <= 0 or size == 0 else (max(0, size - suffix), size)
            start = int(first)
            end = int(last) + 1 if last else size
        except ValueError:
            return None
        if start >= size:
            return (-1, -1)
        if end <= start:
            return None
        return (start, min(end, size))
