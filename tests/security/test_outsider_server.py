"""An outsider against the real server as production runs it (`python -m backend`, Hypercorn with uvloop,
ENVIRONMENT=production, the sandbox runner under bubblewrap), over raw sockets where a client library would
refuse to send the attack: CRLF in headers, ambiguous message framing, bytes that are not UTF-8.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.helpers import PASSWORD, unique_email
from tests.servers import backend_env, free_port, stop, wait_until_serving

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="production needs bubblewrap")

METRICS_TOKEN = "metrics-token-for-the-outsider"


@dataclass
class Server:
    base: str
    port: int
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("outsider-server")
    port = free_port()
    log = directory / "server.log"
    env = backend_env(
        ENVIRONMENT="production",
        SECRET_KEY="Zq8vR2mN5xT1yK7wL3pB9cF4hJ6dS0aGzQ-outsider",
        TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        FRONTEND_URL="https://app.codementor.test",
        BACKEND_URL="https://api.codementor.test",
        CORS_ORIGINS="https://app.codementor.test",
        EMAIL_BACKEND="smtp",
        SMTP_PORT=str(free_port()),  # nothing listens: mails fail after the answer, logged
        METRICS_TOKEN=METRICS_TOKEN,
        PORT=str(port),
        PYTHONUNBUFFERED="1",  # each log line in the file as it is written
    )
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend"], cwd=directory, env=env, stdout=output, stderr=subprocess.PIPE, text=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(base, process)
            yield Server(base, port, log)
        finally:
            stop(process)


def exchange(server: Server, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection (or 5 s of silence)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(request)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            received += b"<still open>"
    return received


def responses(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """Status and headers of each response in `data`."""
    found = []
    for match in re.finditer(rb"HTTP/1\.1 (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n", data, re.S):
        headers = {}
        for line in match.group(2).split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        found.append((int(match.group(1)), headers))
    return found


def test_request_ids_cannot_inject_headers(server: Server) -> None:
    injected = exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: a\rSet-Cookie: x=1\r\n\r\n")
    assert [status for status, _ in responses(injected)] == [400] and b"set-cookie" not in injected.lower()
    for sent in ("a" * 129, "../../etc/passwd", "<script>", "a b", "id;rm", "é"):
        answered = httpx.get(f"{server.base}/health", headers={"X-Request-ID": sent.encode()}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", answered), sent
    assert httpx.get(f"{server.base}/health", headers={"X-Request-ID": "trace-1.2_3"}).headers["X-Request-ID"] == (
        "trace-1.2_3"
    )


def test_ambiguous_framing_ends_the_connection(server: Server) -> None:
    """Content-Length and Transfer-Encoding: Hypercorn reads the chunks; a proxy in front may read the length
    and pass what follows as part of the body. Whatever follows must never be served as a request."""
    smuggled = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    request = (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(smuggled))
    ) + smuggled
    answered = responses(exchange(server, request))
    assert len(answered) == 1, answered
    assert answered[0][0] == 400 and answered[0][1].get("connection") == "close"


def test_bytes_that_are_not_utf8_or_text_are_client_errors(server: Server) -> None:
    for request in (
        b"GET /api/v1/exercises/%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /api/v1/auth/oauth/%c0%af HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /health?x=%ff%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /health?x=\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
        b"Connection: close\r\n\r\n\xff\xfe{}",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
    ):
        statuses = [status for status, _ in responses(exchange(server, request))]
        assert statuses and all(400 <= status < 500 for status in statuses), (request[:60], statuses)


def test_production_headers_cookies_and_metrics(server: Server) -> None:
    registered = httpx.post(
        f"{server.base}/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD, "name": "Eve"}
    )
    assert registered.status_code == 201
    assert int(registered.headers["Strict-Transport-Security"].split("max-age=")[1].split(";")[0]) >= 31536000
    assert not re.search(r"\d+\.\d+", registered.headers.get("Server", ""))  # no version for scanners to match
    for cookie in registered.headers.get_list("Set-Cookie"):
        assert "Secure" in cookie and "SameSite=Lax" in cookie, cookie
    for header in (
        None, "Bearer", "Bearer null", f"Basic {METRICS_TOKEN}", f"Bearer {METRICS_TOKEN[:-1]}",
        f"Bearer {METRICS_TOKEN}x", f"Bearer {METRICS_TOKEN.upper()}", METRICS_TOKEN,
    ):  # fmt: skip
        refused = httpx.get(f"{server.base}/metrics", headers={"Authorization": header} if header else {})
        assert refused.status_code == 401, header
    assert httpx.get(f"{server.base}/metrics", headers={"Authorization": f"bearer {METRICS_TOKEN}"}).status_code == 200
    empty = exchange(server, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \r\nConnection: close\r\n\r\n")
    assert [status for status, _ in responses(empty)] == [401]
    redirect = httpx.get(f"{server.base}/api/v1//exercises", headers={"Host": "evil.example"})
    assert redirect.status_code == 404 and "Location" not in redirect.headers


def test_the_access_log_keeps_each_request_on_one_json_line(server: Server) -> None:
    httpx.get(f"{server.base}/api/v1/x%0d%0a%7B%22event%22%3A%22forged%22%7D%0a")
    httpx.get(f"{server.base}/health")  # the line above is written once its response has left: this follows it
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert not any(event.get("event") == "forged" for event in events)
    assert any("forged" in str(event.get("path")) for event in events)


def sign_up(server: Server, name: str) -> dict[str, str]:
    response = httpx.post(
        f"{server.base}/api/v1/auth/register", json={"email": unique_email(), "password": PASSWORD, "name": name}
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture(scope="module")
def students(server: Server) -> tuple[dict[str, str], dict[str, str]]:
    """A victim and an outsider, shared by the list tests: registration allows 5 a minute per address."""
    return sign_up(server, "Vic"), sign_up(server, "Eve")


def test_lists_read_through_core_queries_show_only_your_own_and_refuse_odd_input(
    server: Server, students: tuple[dict[str, str], dict[str, str]]
) -> None:
    """The submission list and the exercise history are prebuilt Core queries with bind parameters
    (services/exercise_reads.py): another student's rows never appear, an exercise id or a filter an outsider
    makes up is a 404 or 422 problem, never a 500 or somebody else's data."""
    victim, outsider = students
    listed = httpx.get(f"{server.base}/api/v1/exercises?limit=1&language=python", headers=victim).json()
    exercise = listed["items"][0]["id"]
    submitted = httpx.post(
        f"{server.base}/api/v1/exercises/{exercise}/submit", json={"code": "x = 1\n"}, headers=victim, timeout=60
    )
    assert submitted.status_code == 200, submitted.text
    mine = httpx.get(f"{server.base}/api/v1/exercises/{exercise}/submissions", headers=victim).json()
    assert mine["total"] == 1
    assert httpx.get(f"{server.base}/api/v1/exercises/{exercise}/submissions", headers=outsider).json() == {
        "items": [], "total": 0, "limit": 20, "offset": 0,
    }  # fmt: skip
    assert httpx.get(f"{server.base}/api/v1/exercises/history", headers=outsider).json()["total"] == 0
    assert httpx.get(f"{server.base}/api/v1/exercises/history", headers=victim).json()["total"] == 1

    for made_up in ("0", "-1", "99999999", "99999999999999999999", "1%20OR%201=1"):
        response = httpx.get(f"{server.base}/api/v1/exercises/{made_up}/submissions", headers=outsider)
        assert response.status_code == 404, (made_up, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
    for query in (
        "language=python'%20OR%20'1'%3D'1",
        "language=%00",
        "status=completed'%20--",
        "difficulty=easy;DROP%20TABLE%20users",
        "limit=100000",
        "offset=-1",
        "offset=99999999999999999999",
    ):
        response = httpx.get(f"{server.base}/api/v1/exercises/history?{query}", headers=outsider)
        assert response.status_code in (200, 422), (query, response.text)
        if response.status_code == 200:
            assert response.json()["total"] == 0, query
        else:
            assert response.headers["Content-Type"] == "application/problem+json", query
    assert "Traceback" not in server.log.read_text()


COMPILES = {
    "java": "public class Solution {\n    public static void main(String[] args) {}\n}\n",
    "go": "package main\n\nfunc main() {}\n",
    "cpp": "int main() { return 0; }\n",
    "typescript": "console.log(0);\n",
}


def test_every_compiled_language_compiles_and_runs_under_the_servers_umask(server: Server) -> None:
    """`python -m backend` runs under umask 077: an artifact's directories were created 0700, so the run's uid
    could not read Java's harness/ and every Java submission ended `cp: cannot access 'prepared/harness':
    Permission denied` (found from outside). A program that compiles is graded (failed), never an error."""
    student = sign_up(server, "Jo")
    languages = httpx.get(f"{server.base}/api/v1/exercises/languages", headers=student).json()
    offered = {item["name"] for item in languages["items"]}
    for language, code in COMPILES.items():
        if language not in offered:
            continue
        listed = httpx.get(f"{server.base}/api/v1/exercises?limit=1&language={language}", headers=student).json()
        exercise = listed["items"][0]["id"]
        submitted = httpx.post(
            f"{server.base}/api/v1/exercises/{exercise}/submit", json={"code": code}, headers=student, timeout=120
        )
        assert submitted.status_code == 200, (language, submitted.text)
        assert submitted.json()["submission"]["status"] == "failed", (language, submitted.json()["submission"])


def test_an_http2_body_answered_before_its_end_does_not_crash_the_connection(server: Server) -> None:
    """Hypercorn 0.18 speaks cleartext HTTP/2 to anyone who asks (prior knowledge). A body over the size
    limit is answered 413 at once; the rest of it then arrived for a stream Hypercorn had closed, raised
    KeyError in its connection handler and left one 'Unhandled exception in client_connected_cb' in the
    error log per connection: an anonymous log flood (hypercorn #329). backend/server.py drops such data."""
    before = server.log.read_text()
    with httpx.Client(http1=False, http2=True, base_url=server.base, timeout=10) as client:
        for _ in range(3):
            answer = client.post(
                "/api/v1/auth/login", content=b"x" * (3 * 1024 * 1024), headers={"content-type": "application/json"}
            )
            assert answer.http_version == "HTTP/2" and answer.status_code == 413
            assert answer.json()["code"] == "payload_too_large"
        assert client.get("/health").status_code == 200  # the same connection still serves
    httpx.get(f"{server.base}/health")  # the log is written up to here
    added = server.log.read_text()[len(before) :]
    assert "client_connected_cb" not in added and "KeyError" not in added, added[-2000:]


def test_chat_lists_read_through_core_queries_show_only_your_own_and_refuse_odd_input(
    server: Server, students: tuple[dict[str, str], dict[str, str]]
) -> None:
    """The conversation and message pages read by prebuilt Core statements (services/chat/reads.py), from
    outside against python -m backend: another student's conversation is a 404 with or without `before_id`,
    never an empty page that would confirm it exists, and odd paging is a 422 problem, never a 500."""
    victim, outsider = students
    created = httpx.post(f"{server.base}/api/v1/chat/conversations", json={"title": "Mine"}, headers=victim)
    assert created.status_code == 201, created.text
    conversation = created.json()["id"]
    messages = f"{server.base}/api/v1/chat/conversations/{conversation}/messages"
    assert httpx.get(messages, headers=victim).json() == {"items": [], "has_more": False}
    for query in ("", "?before_id=1", "?before_id=99999999", "?limit=1"):
        response = httpx.get(messages + query, headers=outsider)
        assert response.status_code == 404, (query, response.text)
        assert response.headers["Content-Type"] == "application/problem+json"
    assert httpx.get(f"{server.base}/api/v1/chat/conversations", headers=outsider).json()["total"] == 0
    assert httpx.get(f"{server.base}/api/v1/chat/conversations", headers=victim).json()["total"] == 1
    for made_up in ("0", "-1", "99999999999999999999", "1%20OR%201=1"):
        response = httpx.get(f"{server.base}/api/v1/chat/conversations/{made_up}/messages", headers=outsider)
        assert response.status_code == 404, (made_up, response.text)
    for query in ("before_id=0", "before_id=-1", "before_id=99999999999999999999", "before_id=1'--", "limit=0",
                  "limit=101", "offset=-1", "offset=99999999999999999999"):  # fmt: skip
        for url in (messages, f"{server.base}/api/v1/chat/conversations"):
            response = httpx.get(f"{url}?{query}", headers=victim)
            assert response.status_code in (200, 422), (url, query, response.text)
            if response.status_code == 422:
                assert response.headers["Content-Type"] == "application/problem+json", query
    assert "Traceback" not in server.log.read_text()
