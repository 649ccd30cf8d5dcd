"""The TLS context of the server's outgoing HTTPS clients (OAuth providers, GitHub): one per process.

Loading the CA bundle into a context is blocking work of ~20 ms of CPU; each app built it two or three times
(the OAuth providers, GitHub's repository access, and the sandbox client's transport, which httpx gives one
even for plain HTTP over a Unix socket). A context is safe to share between clients and threads.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def client_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CA bundle), built on first use."""
    return httpx.create_ssl_context()
