"""A TCP proxy between the app and a shared service (PostgreSQL, Redis) that tests can cut and restore.

The shared services are used by other test runs at the same time, so they are never stopped: the app is
pointed at this proxy instead, and "the database goes away" means the proxy drops every connection and
refuses new ones on the same port; `restore()` listens again and traffic flows as before. `stall()` is
the nastier failure: connections stay open but nothing gets through (a hung server, a dropped route).
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.servers import free_port


class TCPProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self.is_stalled = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        """Refuse new connections and reset the open ones, as a crashed server would."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._connections):
            writer.transport.abort()
        self._connections.clear()

    async def restore(self) -> None:
        self.is_stalled = False
        if self._server is None:
            await self.start()

    def stall(self) -> None:
        """Accept and hold connections, but forward nothing in either direction."""
        self.is_stalled = True

    async def stop(self) -> None:
        await self.cut()

    def url(self, scheme_and_auth: str, path: str = "") -> str:
        return f"{scheme_and_auth}127.0.0.1:{self.port}{path}"

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._connections.update((client_writer, upstream_writer))
        await asyncio.gather(
            self._pipe(client_reader, upstream_writer),
            self._pipe(upstream_reader, client_writer),
            return_exceptions=True,
        )
        for writer in (client_writer, upstream_writer):
            self._connections.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                if not self.is_stalled:
                    writer.write(data)
                    await writer.drain()
        writer.transport.abort()
