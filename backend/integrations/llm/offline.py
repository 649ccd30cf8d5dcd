"""The offline tutor: deterministic Socratic replies with no model and no network (`model: "offline"`).

It cannot understand code, so it never pretends to: it asks the guiding questions a tutor would ask
first, shaped by what the message looks like (code, an error, a question), the student's level and,
in an exercise conversation, the student's latest submission (the failing test, the kind of failure
and the line, never a hidden test's input) and the exercise's next authored hint. Good enough to use
the product without keys; honest about what it is.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator

from backend.integrations.llm.base import LLM, Attempt, Completion, Prompt, StreamItem, Usage
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


# What each kind of failure usually means, as a question that sends the student to look.
FAILURE_QUESTIONS = {
    "IndexError": "An IndexError means the code asked for a position the sequence does not have. Which index "
    "does it read there, and how long is the sequence at that moment (could it be empty)?",
    "KeyError": "A KeyError means a dictionary was asked for a key it does not hold. Which key, and where "
    "should it have been added?",
    "TypeError": "A TypeError means two values of types that do not fit were combined (or a function got the "
    "wrong arguments). What type does each value have on that line?",
    "ValueError": "A ValueError means a function got a value of the right type but the wrong content. Which "
    "value reaches it in that test?",
    "ZeroDivisionError": "Something was divided by zero. When can the divisor be 0, and what should happen then?",
    "NameError": "A NameError means a name is used before it exists. Is it spelled the same everywhere, and "
    "defined before that line runs?",
    "AttributeError": "An AttributeError means a value does not have the method or field asked for. What type "
    "is that value really?",
    "RecursionError": "The function keeps calling itself without reaching a base case. Which input should stop "
    "the recursion, and does every call get closer to it?",
    "SyntaxError": "Python cannot read the code there, so nothing ran. Look at that line and the one before "
    "it: a missing bracket, colon or quote?",
    "IndentationError": "The indentation does not line up there, so nothing ran. Which block should that line "
    "belong to?",
    "timeout": "It ran out of time: a loop that never ends, or work repeated far too often. What makes each loop stop?",
    "wrong result": "It returns something other than what the test expects. Work that case by hand: what "
    "should come out, and what does your code return at each step?",
}


def attempt_text(title: str | None, attempt: Attempt) -> str:
    """The latest submission in a tutor's words: the failing test, the kind of failure and the line."""
    subject = f'your latest submission for "{title}"' if title else "your latest submission"
    if attempt.status == "passed":
        return (
            f"Looking at {subject}: all {attempt.tests_total} tests pass. Nice work! "
            "Is there anything you would make simpler or clearer?"
        )
    text = f"Looking at {subject}: {attempt.tests_passed} of {attempt.tests_total} tests pass."
    if attempt.failing_test:
        kind = attempt.failure_kind or "wrong result"
        how = "gives a different result" if kind == "wrong result" else f"fails with {kind}"
        if kind == "timeout":
            how = "runs out of time"
        text += f' The test "{attempt.failing_test}" {how}'
        text += f" (line {attempt.line})." if attempt.line else "."
        question = FAILURE_QUESTIONS.get(kind)
        if question is None and kind.endswith(("Error", "Exception")):
            question = f"Read what a {kind} means: which value on that line could cause it?"
        if question:
            text += f" {question}"
    elif attempt.line:
        text += f" Python reports a problem on line {attempt.line}: what does that line do?"
    return text


def topic_of(message: str) -> str:
    quoted = re.search(r"`([^`\n]{1,60})`", message)
    if quoted:
        return f"`{quoted.group(1)}`"
    words = [word for word in WORD_PATTERN.findall(message) if word.lower() not in STOPWORDS]
    return " ".join(words[:TOPIC_WORDS]).strip(".'-") or "this"


def socratic_reply(
    message: str,
    skill_level: str | None,
    hint: str | None,
    *,
    title: str | None = None,
    attempt: Attempt | None = None,
) -> str:
    level = skill_level if skill_level in OPENERS else "beginner"
    topic = topic_of(message)
    if attempt is not None:
        body = attempt_text(title, attempt)
        if hint and attempt.status != "passed":
            body += f"\n\nHere is a nudge for this exercise: {hint.strip()}"
    elif hint:
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
        text = socratic_reply(
            message, prompt.skill_level, prompt.hint, title=prompt.exercise_title, attempt=prompt.attempt
        )
        # No model reads the prompt, so it costs no prompt tokens; the reply is counted like any other.
        usage = Usage(self.provider, MODEL, 0, count_tokens(text), round((time.perf_counter() - started) * 1000))
        return text, usage

    async def complete(self, prompt: Prompt, *, json_mode: bool = False) -> Completion:
        text, usage = self._answer(prompt)
        return Completion(text, usage)

    async def stream(self, prompt: Prompt) -> AsyncGenerator[StreamItem, None]:
        text, usage = self._answer(prompt)
        for word in re.findall(r"\S+\s*|\s+", text):  # word by word, like a model would
            yield word
        yield usage
