"""The offline tutor: deterministic Socratic replies with no model and no network (`model: "offline"`).

It cannot understand code, so it never pretends to: it asks the guiding questions a tutor would ask
first, shaped by what the message looks like (code, an error, a question), the student's level and,
in an exercise conversation, the exercise's next authored hint. Good enough to use the product
without keys; honest about what it is.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

from backend.integrations.llm.base import LLM, Completion, Prompt, StreamItem, Usage
from backend.integrations.llm.tokens import count_tokens

MODEL = "offline"
TOPIC_WORDS = 6
NOTE = "_(Offline tutor: no AI model is configured, so I answer with guiding questions.)_"
_STOPWORDS = (
    "a an and are can could do does how i i'm im in is it its me my of on or please should the this to what "
    "when where which why with would you your help explain tell about get make use using stuck"
)
STOPWORDS = frozenset(_STOPWORDS.split())
CODE_PATTERN = re.compile(r"```|^\s*(def|class|for|while|if|return|import|function|const|let|var)\b|[;{}]\s*$", re.M)
ERROR_PATTERN = re.compile(r"\b(error|exception|traceback|fails?|failing|crash(es|ed)?|bug|wrong)\b", re.I)
STUCK_PATTERN = re.compile(r"\b(stuck|give up|no idea|don'?t know|just tell me|lost)\b", re.I)
WORD_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_+#.'-]*")

OPENERS = {
    "beginner": "Let's take this one small step at a time.",
    "intermediate": "Good thing to dig into.",
    "advanced": "Let's reason about it together.",
    "expert": "Let's look at it from first principles.",
}
FOLLOW_UPS = {
    "beginner": "Try writing down, in plain words, what each step should do before you write any code.",
    "intermediate": "Try a tiny example first and check each step by hand or with a print.",
    "advanced": "Think about the invariants you rely on and where one of them could break.",
    "expert": "Consider the edge cases and the complexity you are trading for simplicity.",
}


def topic_of(message: str) -> str:
    quoted = re.search(r"`([^`\n]{1,60})`", message)
    if quoted:
        return f"`{quoted.group(1)}`"
    words = [word for word in WORD_PATTERN.findall(message) if word.lower() not in STOPWORDS]
    return " ".join(words[:TOPIC_WORDS]).strip(".'-") or "this"


def socratic_reply(message: str, skill_level: str | None, hint: str | None) -> str:
    level = skill_level if skill_level in OPENERS else "beginner"
    topic = topic_of(message)
    if hint:
        body = (
            f"Here is a nudge for this exercise: {hint.strip()}\n\n"
            "How could you use that idea in your solution? Tell me what you would try first."
        )
    elif STUCK_PATTERN.search(message):
        body = (
            f"It's completely fine to be stuck on {topic}; that's where learning happens. "
            "Let's shrink the problem: what is the very first thing your code needs to do, "
            "and can you get just that part working?"
        )
    elif CODE_PATTERN.search(message):
        body = (
            "Thanks for sharing your code. Before we change anything: what do you expect it to do, "
            "and what does it actually do? Run it on a small input and tell me the first point "
            "where the result differs from what you expected."
        )
    elif ERROR_PATTERN.search(message):
        body = (
            "Errors are clues. What does the last line of the error message say, and which line of "
            "your code does it point to? What value do you think a variable has at that moment?"
        )
    else:
        body = (
            f"What do you already know about {topic}? Describe it in your own words, "
            "then think of one small example where you would use it."
        )
    return f"{OPENERS[level]} {body}\n\n{FOLLOW_UPS[level]}\n\n{NOTE}"


class OfflineTutor(LLM):
    provider = "offline"
    model = MODEL

    def _answer(self, prompt: Prompt) -> tuple[str, Usage]:
        started = time.perf_counter()
        message = next((t.content for t in reversed(prompt.messages) if t.role == "user"), "")
        text = socratic_reply(message, prompt.skill_level, prompt.hint)
        # No model reads the prompt, so it costs no prompt tokens; the reply is counted like any other.
        usage = Usage(self.provider, MODEL, 0, count_tokens(text), round((time.perf_counter() - started) * 1000))
        return text, usage

    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        text, usage = self._answer(prompt)
        return Completion(text, usage)

    async def stream(self, prompt: Prompt) -> AsyncIterator[StreamItem]:
        text, usage = self._answer(prompt)
        for word in re.findall(r"\S+\s*|\s+", text):  # word by word, like a model would
            yield word
        yield usage
