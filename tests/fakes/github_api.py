"""A fake GitHub REST API (repositories and pull requests) that PyGithub talks to via GITHUB_API_URL.

A Quart app on a real 127.0.0.1 socket (the `FakeServer` of oauth_providers.py). Like GitHub, a private
repository is a 404 to anyone whose token was not granted access to it, and to anonymous callers.
Tests add repositories with `add_repository` and pulls with `add_pull`; `reset()` between tests.
"""

from __future__ import annotations

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

    def reset(self) -> None:
        super().reset()
        self.repositories: dict[str, FakeRepository] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, token) of every call

    def add_repository(self, full_name: str, **fields: Any) -> FakeRepository:
        repository = FakeRepository(full_name=full_name, **fields)
        self.repositories[full_name.lower()] = repository
        return repository

    def add_pull(self, repository: FakeRepository, number: int, title: str, author: str, head_ref: str) -> None:
        repository.pulls.append(
            {
                "id": number * 10,
                "number": number,
                "state": "open",
                "title": title,
                "user": {"login": author, "id": 7},
                "head": {"ref": head_ref, "sha": "a" * 40},
                "base": {"ref": repository.default_branch},
                "updated_at": "2026-11-20T10:00:00Z",
                "html_url": f"https://github.com/{repository.full_name}/pull/{number}",
                "url": f"{self.base_url}/repos/{repository.full_name}/pulls/{number}",
            }
        )

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
