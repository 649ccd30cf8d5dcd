"""A fake GitHub REST API (repositories, pull requests, their files, contents, reviews) that PyGithub
talks to via GITHUB_API_URL.

A Quart app on a real 127.0.0.1 socket (the `FakeServer` of oauth_providers.py). Like GitHub, a private
repository is a 404 to anyone whose token was not granted access to it, and to anonymous callers, and
posting a review needs a token. Tests add repositories with `add_repository`, pulls with `add_pull`
(optionally with changed files), files at a ref with `add_file`; posted reviews land in `reviews`.
`reset()` between tests.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from quart import Response, jsonify, request

from tests.fakes.oauth_providers import FakeServer

_ids = itertools.count(1000)


@dataclass
class FakeRepository:
    full_name: str
    private: bool = False
    description: str | None = "A repository"
    language: str | None = "Python"
    default_branch: str = "main"
    stars: int = 0
    readers: set[str] = field(default_factory=set)  # tokens that can see it when private
    pulls: list[dict[str, Any]] = field(default_factory=list)
    pull_files: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    contents: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (ref, path) -> bytes
    id: int = field(default_factory=lambda: next(_ids))

    def as_json(self, base_url: str) -> dict[str, Any]:
        owner = self.full_name.split("/", 1)[0]
        return {
            "id": self.id,
            "name": self.full_name.split("/", 1)[1],
            "full_name": self.full_name,
            "owner": {"login": owner, "id": 1, "type": "User"},
            "private": self.private,
            "html_url": f"https://github.com/{self.full_name}",
            "url": f"{base_url}/repos/{self.full_name}",
            "description": self.description,
            "language": self.language,
            "default_branch": self.default_branch,
            "stargazers_count": self.stars,
        }


class FakeGitHubAPI(FakeServer):
    name = "github_api"

    def __init__(self) -> None:
        super().__init__()
        self.app.get("/repos/<owner>/<name>")(self.get_repo)
        self.app.get("/repos/<owner>/<name>/pulls")(self.list_pulls)
        self.app.get("/repos/<owner>/<name>/pulls/<int:number>")(self.get_pull)
        self.app.get("/repos/<owner>/<name>/pulls/<int:number>/files")(self.list_pull_files)
        self.app.post("/repos/<owner>/<name>/pulls/<int:number>/reviews")(self.create_review)
        self.app.get("/repos/<owner>/<name>/contents/<path:path>")(self.get_contents)
        self.app.get("/repos/<owner>/<name>/commits")(self.list_commits)
        self.app.get("/repos/<owner>/<name>/git/trees/<tree_sha>")(self.get_tree)
        self.app.before_request(self.refuse_revoked_tokens)

    def reset(self) -> None:
        super().reset()
        self.repositories: dict[str, FakeRepository] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, token) of every call
        self.revoked_tokens: set[str] = set()  # answered 401 "Bad credentials", as GitHub does
        self.reviews: list[dict[str, Any]] = []  # bodies of POST .../pulls/{n}/reviews, with "number" and "token"

    def add_repository(self, full_name: str, **fields: Any) -> FakeRepository:
        repository = FakeRepository(full_name=full_name, **fields)
        self.repositories[full_name.lower()] = repository
        return repository

    def add_pull(
        self,
        repository: FakeRepository,
        number: int,
        title: str,
        author: str,
        head_ref: str,
        files: dict[str, bytes | None] | None = None,
        *,
        head_sha: str = "a" * 40,
    ) -> None:
        """A pull; `files` are its changes (path -> the new content, None for a deletion): each becomes a
        changed file whose patch adds every line, and its content at `head_sha`."""
        for path, content in (files or {}).items():
            self.add_changed_file(repository, number, path, content, head_sha=head_sha)
        repository.pulls.append(
            {
                "id": number * 10,
                "number": number,
                "state": "open",
                "title": title,
                "user": {"login": author, "id": 7},
                "head": {"ref": head_ref, "sha": head_sha},
                "base": {"ref": repository.default_branch},
                "updated_at": "2026-11-20T10:00:00Z",
                "html_url": f"https://github.com/{repository.full_name}/pull/{number}",
                "url": f"{self.base_url}/repos/{repository.full_name}/pulls/{number}",
            }
        )

    def add_file(self, repository: FakeRepository, ref: str, path: str, content: bytes) -> None:
        repository.contents[(ref, path)] = content

    def add_changed_file(
        self,
        repository: FakeRepository,
        number: int,
        path: str,
        content: bytes | None,
        *,
        head_sha: str = "a" * 40,
        patch: str | None = None,
        status: str | None = None,
    ) -> None:
        """A file the pull changes. Without `patch`, a text file's patch adds all its lines (no patch for
        binary content, as GitHub does)."""
        lines = content.decode("utf-8", "replace").splitlines() if content is not None else []
        is_binary = content is not None and b"\x00" in content
        if patch is None and content is not None and not is_binary:
            patch = f"@@ -0,0 +1,{len(lines)} @@\n" + "\n".join(f"+{line}" for line in lines)
        if content is not None:
            repository.contents[(head_sha, path)] = content
        repository.pull_files.setdefault(number, []).append(
            {
                "sha": "b" * 40,
                "filename": path,
                "status": status or ("removed" if content is None else "added"),
                "additions": len(lines),
                "deletions": 0,
                "changes": len(lines),
                "patch": patch,
            }
        )

    async def refuse_revoked_tokens(self) -> Response | None:
        if self._token() in self.revoked_tokens:
            response = jsonify({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
            response.status_code = 401
            return response
        return None

    def _token(self) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return token if scheme.lower() in {"token", "bearer"} and token else None

    def _visible(self, owner: str, name: str) -> FakeRepository | None:
        token = self._token()
        self.requests.append((request.path, token))
        repository = self.repositories.get(f"{owner}/{name}".lower())
        if repository is None or (repository.private and token not in repository.readers):
            return None
        return repository

    @staticmethod
    def _not_found() -> Response:
        response = jsonify({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        response.status_code = 404
        return response

    async def get_repo(self, owner: str, name: str) -> Response:
        repository = self._visible(owner, name)
        if repository is None:
            return self._not_found()
        return jsonify(repository.as_json(self.base_url))

    async def list_pulls(self, owner: str, name: str) -> Response:
        repository = self._visible(owner, name)
        if repository is None:
            return self._not_found()
        return jsonify([pull for pull in repository.pulls if request.args.get("state", "open") == "open"])

    def _pull(self, repository: FakeRepository, number: int) -> dict[str, Any] | None:
        return next((pull for pull in repository.pulls if pull["number"] == number), None)

    async def get_pull(self, owner: str, name: str, number: int) -> Response:
        repository = self._visible(owner, name)
        pull = self._pull(repository, number) if repository is not None else None
        if repository is None or pull is None:
            return self._not_found()
        return jsonify(pull)

    async def list_pull_files(self, owner: str, name: str, number: int) -> Response:
        repository = self._visible(owner, name)
        if repository is None or self._pull(repository, number) is None:
            return self._not_found()
        return jsonify(repository.pull_files.get(number, []))

    async def get_contents(self, owner: str, name: str, path: str) -> Response:
        repository = self._visible(owner, name)
        if repository is None:
            return self._not_found()
        ref = request.args.get("ref", repository.default_branch)
        content = repository.contents.get((ref, path))
        if content is not None:
            return jsonify(self._content_json(repository, path, content))
        children = sorted(p for r, p in repository.contents if r == ref and p.startswith(path.rstrip("/") + "/"))
        if not children:
            return self._not_found()
        return jsonify([self._content_json(repository, child, repository.contents[(ref, child)]) for child in children])

    @staticmethod
    def tree_sha(ref: str) -> str:
        return ref.encode().hex()  # the fake's trees are named after their ref, reversibly

    async def list_commits(self, owner: str, name: str) -> Response:
        """The head commit of `?sha=` (a ref); like GitHub, 404 for a ref with nothing at it."""
        repository = self._visible(owner, name)
        ref = request.args.get("sha", repository.default_branch if repository else "")
        if repository is None or not any(r == ref for r, _ in repository.contents):
            return self._not_found()
        url = f"{self.base_url}/repos/{repository.full_name}"
        tree = {"sha": self.tree_sha(ref), "url": f"{url}/git/trees/{self.tree_sha(ref)}"}
        return jsonify([{"sha": "e" * 40, "url": f"{url}/commits/{'e' * 40}", "commit": {"tree": tree}}])

    async def get_tree(self, owner: str, name: str, tree_sha: str) -> Response:
        """The files added at a ref (`add_file`), as its recursive git tree."""
        repository = self._visible(owner, name)
        try:
            ref = bytes.fromhex(tree_sha).decode()
        except ValueError:
            return self._not_found()
        paths = sorted(p for r, p in repository.contents if r == ref) if repository is not None else []
        if repository is None or not paths:
            return self._not_found()
        url = f"{self.base_url}/repos/{repository.full_name}/git"
        tree = [
            {"path": path, "mode": "100644", "type": "blob", "sha": "c" * 40, "url": f"{url}/blobs/{'c' * 40}"}
            | {"size": len(repository.contents[(ref, path)])}
            for path in paths
        ]
        return jsonify({"sha": tree_sha, "url": f"{url}/trees/{tree_sha}", "tree": tree, "truncated": False})

    def _content_json(self, repository: FakeRepository, path: str, content: bytes) -> dict[str, Any]:
        url = f"{self.base_url}/repos/{repository.full_name}/contents/{path}"
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(content),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": base64.b64encode(content).decode("ascii"),
            "sha": "c" * 40,
            "url": url,
            "html_url": f"https://github.com/{repository.full_name}/blob/main/{path}",
        }

    async def create_review(self, owner: str, name: str, number: int) -> Response:
        repository = self._visible(owner, name)
        if repository is None or self._pull(repository, number) is None:
            return self._not_found()
        if self._token() is None:
            response = jsonify({"message": "Requires authentication"})
            response.status_code = 401
            return response
        body = await request.get_json()
        self.reviews.append({**body, "number": number, "token": self._token()})
        review_id = len(self.reviews)
        return jsonify(
            {
                "id": review_id,
                "body": body.get("body"),
                "state": "COMMENTED",
                "user": {"login": "octocat", "id": 1},
                "html_url": f"https://github.com/{repository.full_name}/pull/{number}#pullrequestreview-{review_id}",
                "pull_request_url": f"{self.base_url}/repos/{repository.full_name}/pulls/{number}",
                "commit_id": "a" * 40,
            }
        )
