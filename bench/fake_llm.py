"""The tests' fake OpenAI server as a process of its own, paced like a model: `python -m bench.fake_llm`.

bench/run.py starts it so the server under test streams chat replies from a real socket with a fixed
delay between chunks (`--chunk-delay`), without calling anyone outside 127.0.0.1. It prints one JSON
line `{"base_url", "api_key"}` once it listens, and serves until SIGTERM.

A user message that contains LONG_MARKER is answered with a stream held open for `--hold-seconds`
(a dozen events, evenly spaced) instead of the short default reply, so that hundreds of streams are open
at the same time without the relay of their chunks being the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from hypercorn.config import Config
from quart import Response, g

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.llm_servers import DEFAULT_REPLY, FakeOpenAI

LONG_MARKER = "[long reply]"
HELD_REPLY = "Let us take this one step at a time and think it through together."
REQUESTS_KEPT = 100  # the fake records every request body; a long benchmark needs only the last few


class PacedOpenAI(FakeOpenAI):
    def __init__(self, hold_seconds: float) -> None:
        super().__init__()
        self.hold_seconds = hold_seconds
        self._holding = False

    async def receive(self) -> Response | None:
        failure = await super().receive()
        del self.requests[:-REQUESTS_KEPT]
        messages = g.body.get("messages") or [{}]  # this request's body (others run concurrently)
        # Set after the last await: chat_completions reads both before it yields again.
        self._holding = LONG_MARKER in str(messages[-1].get("content", ""))
        self.reply = HELD_REPLY if self._holding else DEFAULT_REPLY
        return failure

    def sse_response(self, events: list[tuple[bytes, bool]]) -> Response:
        if not self._holding:
            return super().sse_response(events)
        pause = self.hold_seconds / len(events)

        async def held() -> AsyncIterator[bytes]:
            for event, _ in events:
                await asyncio.sleep(pause)
                yield event

        response = Response(held(), content_type="text/event-stream")
        response.timeout = None
        return response


async def serve(chunk_delay: float, hold_seconds: float) -> None:
    Config.backlog = 2048  # hundreds of streams connect at once; Hypercorn's default backlog is 100
    fake = PacedOpenAI(hold_seconds)
    fake.chunk_delay = chunk_delay
    await fake.start()
    print(json.dumps({"base_url": fake.sdk_base_url, "api_key": fake.api_key}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="seconds between stream chunks")
    parser.add_argument("--hold-seconds", type=float, default=10, help="how long a held stream lasts")
    args = parser.parse_args()
    asyncio.run(serve(args.chunk_delay, args.hold_seconds))


if __name__ == "__main__":
    main()
