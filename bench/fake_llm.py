"""The tests' fake OpenAI server as a process of its own, paced like a model: `python -m bench.fake_llm`.

bench/run.py starts it so the server under test streams chat replies from a real socket with a fixed
delay between chunks (`--chunk-delay`), without calling anyone outside 127.0.0.1. It prints one JSON
line `{"base_url", "api_key"}` once it listens, and serves until SIGTERM.

A user message that contains LONG_MARKER is answered with `--long-words` words instead of the short
default reply: long enough that hundreds of streams are open at the same time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from hypercorn.config import Config
from quart import Response, g

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes.llm_servers import DEFAULT_REPLY, FakeOpenAI

LONG_MARKER = "[long reply]"
REQUESTS_KEPT = 100  # the fake records every request body; a long benchmark needs only the last few


class PacedOpenAI(FakeOpenAI):
    def __init__(self, long_reply: str) -> None:
        super().__init__()
        self.long_reply = long_reply

    async def receive(self) -> Response | None:
        failure = await super().receive()
        del self.requests[:-REQUESTS_KEPT]
        messages = g.body.get("messages") or [{}]  # this request's body (others run concurrently)
        asks_long = LONG_MARKER in str(messages[-1].get("content", ""))
        # Set after the last await: chat_completions reads `reply` before it yields again.
        self.reply = self.long_reply if asks_long else DEFAULT_REPLY
        return failure


async def serve(chunk_delay: float, long_words: int) -> None:
    Config.backlog = 2048  # hundreds of streams connect at once; Hypercorn's default backlog is 100
    fake = PacedOpenAI(" ".join(["word"] * long_words))
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
    parser.add_argument("--long-words", type=int, default=300, help="words in the long reply")
    args = parser.parse_args()
    asyncio.run(serve(args.chunk_delay, args.long_words))


if __name__ == "__main__":
    main()
