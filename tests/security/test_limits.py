"""Per-IP limits cannot be dodged by claiming another address.

Without a trusted proxy (PROXY_TRUSTED_HOPS=0, the default) X-Forwarded-For and friends are the
client's own words and are ignored; the per-IP counters key on the socket's address.
(The limits themselves: tests/api/test_auth.py and tests/test_cache.py, listed in test_index.py.)
"""

from __future__ import annotations

from quart.testing import QuartClient

from tests.helpers import unique_email
from tests.security.support import problem_code

LOGIN_LIMIT_PER_MINUTE = 10


async def test_forwarded_headers_do_not_reset_the_per_ip_login_limit(client: QuartClient) -> None:
    statuses = []
    for number in range(LOGIN_LIMIT_PER_MINUTE + 1):
        spoofed = f"203.0.113.{number}"
        response = await client.post(
            "/api/v1/auth/login",
            json={"email": unique_email(), "password": "Wrong-password-123"},
            headers={"X-Forwarded-For": spoofed, "X-Real-IP": spoofed, "Forwarded": f"for={spoofed}"},
        )
        statuses.append(response.status_code)
    assert statuses == [401] * LOGIN_LIMIT_PER_MINUTE + [429]
    assert problem_code(await response.get_json()) == "rate_limited"
