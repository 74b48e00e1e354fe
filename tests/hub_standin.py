"""A stand-in for the Hugging Face hub: dataset repositories served from a folder by a real HTTP server on
127.0.0.1, answering the few endpoints `huggingface_hub` and `datasets` call to load a dataset (repository
info, file tree, file download). A process pointed at it with HF_ENDPOINT loads datasets exactly as it would
from the hub, through the real libraries.

Each repository is `<root>/<owner>/<name>/` with a README.md whose YAML header maps configs and splits to
data files, as dataset repositories on the hub do.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse
from pathlib import Path
from typing import Any

COMMIT = "5eed" * 10


def write_repo(root: Path, repo: str, configs: dict[str | None, dict[str, list[dict]]]) -> Path:
    """A dataset repository: per config (None: the default one) and split, a JSON-lines file of the rows, and
    the README.md that declares them."""
    folder = root / repo
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        name = config or "default"
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, rows in splits.items():
            relative = f"data/{name}/{split}.jsonl"
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
            lines += [f"  - split: {split}", f"    path: {relative}"]
    lines += ["---", f"# {repo}", ""]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return folder


class LocalHub:
    """The server; `requests` records (method, path) of every request it answered."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hub.answer(self, head=False)

            def do_HEAD(self) -> None:
                hub.answer(self, head=True)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> LocalHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo: str) -> list[str]:
        base = self.root / repo
        return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())

    def answer(self, handler: http.server.BaseHTTPRequestHandler, head: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlparse(handler.path).path)
        self.requests.append((handler.command, path))
        parts = path.strip("/").split("/")
        if parts[:1] == ["datasets"] and "resolve" in parts:
            at = parts.index("resolve")
            return self.send_file(handler, "/".join(parts[1:at]), "/".join(parts[at + 2 :]), head)
        if parts[:2] == ["api", "datasets"]:
            rest = parts[2:]
            for keyword in ("revision", "tree"):
                if keyword in rest:
                    at = rest.index(keyword)
                    repo, after = "/".join(rest[:at]), rest[at + 2 :]
                    break
            else:
                repo, keyword, after = "/".join(rest), "info", []
            if not (self.root / repo).is_dir():
                return self.send(handler, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"},
                                 head)
            if keyword == "tree":
                return self.send_json(handler, self.tree(repo, "/".join(after)), head)
            info = {"id": repo, "sha": COMMIT, "private": False, "gated": False, "disabled": False,
                    "siblings": [{"rfilename": name} for name in self.files(repo)], "tags": []}
            return self.send_json(handler, info, head)
        return self.send(handler, 404, b"", {}, head)

    def tree(self, repo: str, under: str) -> list[dict]:
        """The entries directly under `under` (files with size and a hash, folders)."""
        entries: dict[str, dict] = {}
        for name in self.files(repo):
            if under and not name.startswith(under + "/"):
                continue
            tail = name[len(under) + 1 :] if under else name
            head, _, rest = tail.partition("/")
            child = f"{under}/{head}" if under else head
            if rest:
                entries[child] = {"type": "directory", "path": child, "oid": "0" * 40}
            else:
                data = (self.root / repo / name).read_bytes()
                entries[child] = {"type": "file", "path": child, "size": len(data),
                                  "oid": hashlib.sha1(data).hexdigest()}
        return list(entries.values())

    def send_file(self, handler: http.server.BaseHTTPRequestHandler, repo: str, name: str, head: bool) -> None:
        path = self.root / repo / name
        if not path.is_file():
            return self.send(handler, 404, b"", {"X-Error-Code": "EntryNotFound"}, head)
        data = path.read_bytes()
        self.send(handler, 200, data, {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}, head)

    def send_json(self, handler: http.server.BaseHTTPRequestHandler, value: Any, head: bool) -> None:
        self.send(handler, 200, json.dumps(value).encode(), {"Content-Type": "application/json"}, head)

    @staticmethod
    def send(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str],
             head: bool) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)
