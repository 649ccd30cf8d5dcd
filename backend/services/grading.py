"""Grading a sandbox run: the rubric, the grade, and offline feedback written for a student.

grade = round(100 × c × (0.40 + 0.30·quality + 0.15·efficiency + 0.15·style)), c = share of tests passed:
failing every test scores 0 however tidy the code, and a perfect solution scores 100.
- style: pyflakes findings for Python (the sandbox runner's, sent with the run: the API does not parse submitted
  code; computed here, in a thread, only for a sandbox that is not our runner: Piston); for Go,
  what gofmt would change, for C++ what clang-format would (both checked in the sandbox's compile step,
  `style_findings`), for Java javac's lint, for TypeScript the compiler's unused-code diagnostics;
  JavaScript style is not scored (None: docs/LANGUAGES.md says why) and its weight goes to the scored parts;
- efficiency: the run time against the reference solution's in the same sandbox;
- quality: the LLM's judgement when one is configured, else static measures (function length, nesting
  depth, naming) for Python, and not scored for other languages.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import structlog

from backend.integrations.llm import LLM, ChatTurn, LLMError, Prompt
from backend.integrations.sandbox.analysis import StaticQuality, lint, static_quality
from backend.services.learner import mistakes as learner_mistakes

log = structlog.get_logger(__name__)

WEIGHTS = {"base": 0.40, "quality": 0.30, "efficiency": 0.15, "style": 0.15}
STYLE_PENALTY = 0.2  # per pyflakes finding
# Run times include starting an interpreter: anything within 2× the reference (+50 ms) is full marks.
EFFICIENCY_SLACK, EFFICIENCY_FLOOR_MS = 2.0, 50
MAX_LISTED = 4  # findings per list in the feedback
LLM_QUALITY_MAX_TOKENS = 600


@dataclass(frozen=True)
class Review:
    """What the grade is made of and what the student reads."""

    rubric: dict[str, float | None]  # None: a part not scored for the language
    grade: float
    feedback: str
    strengths: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    issues: list[tuple[str, str]] = field(default_factory=list)  # static findings by kind, for the learner model


# --- the measures ----------------------------------------------------------------------------------


def style_score(findings: list[str]) -> float:
    return max(0.0, 1.0 - STYLE_PENALTY * len(findings))


def efficiency_score(duration_ms: int | None, reference_ms: int | None) -> float:
    if not duration_ms or reference_ms is None:
        return 1.0  # nothing to compare against: do not punish the student for it
    allowed = EFFICIENCY_SLACK * reference_ms + EFFICIENCY_FLOOR_MS
    return round(min(1.0, allowed / duration_ms), 3)


def grade_of(correctness: float, quality: float | None, efficiency: float, style: float | None) -> float:
    """A part that is not scored (None: no offline linter or static measure for the language) gives its
    weight to the others in proportion, so a perfect solution still scores 100."""
    parts = {"quality": quality, "efficiency": efficiency, "style": style}
    scored = {name: value for name, value in parts.items() if value is not None}
    total = WEIGHTS["base"] + sum(WEIGHTS[name] for name in scored)
    weighted = WEIGHTS["base"] + sum(WEIGHTS[name] * value for name, value in scored.items())
    return float(round(100 * correctness * weighted / total))


# --- feedback --------------------------------------------------------------------------------------


def offline_feedback(
    *,
    status: str,
    tests_passed: int,
    tests_total: int,
    failed: list[dict[str, Any]],
    error_line: int | None,
    findings: list[str],
    quality: StaticQuality,
    efficiency: float,
) -> tuple[str, list[str], list[str]]:
    strengths: list[str] = []
    improvements: list[str] = []
    if status == "timeout":
        feedback = "Your code ran out of time. Look for a loop that never ends, or work that repeats inside a loop."
        improvements.append("Check every loop's exit condition and avoid recomputing the same values.")
    elif status == "error" and tests_passed == 0:
        where = f" on line {error_line}" if error_line else ""
        feedback = f"Python could not run your code: there is an error{where}. Fix it first, then submit again."
        improvements.append(f"Read the error message{where} in the output below: it names the problem.")
    elif tests_passed == tests_total and tests_total:
        feedback = f"All {tests_total} tests pass. Well done!"
        strengths.append("Your solution handles every test case, edge cases included.")
    else:
        feedback = f"{tests_passed} of {tests_total} tests pass. Look at the failing cases below and compare."
        if tests_passed:
            strengths.append(f"You already handle {tests_passed} of the {tests_total} cases.")
        for result in failed[:MAX_LISTED]:
            if result.get("expected") is not None:  # a visible example: show what differs
                improvements.append(
                    f"Example '{result['name']}' fails: expected {result['expected']}, got {result.get('actual')}."
                )
            else:
                improvements.append(f"Test '{result['name']}': {result.get('message') or 'it fails'}")
    if status in ("passed", "failed"):
        if not findings:
            strengths.append("The linter finds nothing to complain about.")
        for finding in findings[:MAX_LISTED]:
            improvements.append(f"Tidy up {finding}.")
        if efficiency >= 1.0 and tests_passed:
            strengths.append("It runs about as fast as the reference solution.")
        elif tests_passed:
            improvements.append("It is slower than it could be: look for repeated work inside loops.")
        for name in quality.long_functions[:MAX_LISTED]:
            improvements.append(f"`{name}` is long: split it into smaller helper functions.")
        for name in quality.deep_functions[:MAX_LISTED]:
            improvements.append(f"`{name}` nests deeply: return early or extract a helper to flatten it.")
        if quality.poor_names:
            improvements.append(f"Use descriptive snake_case names instead of {', '.join(quality.poor_names[:4])}.")
        elif tests_passed:
            strengths.append("Your names are clear and follow Python conventions.")
    return feedback, strengths, improvements


LLM_REVIEW_SYSTEM = (
    "You review a student's Python solution to a programming exercise. Judge only code quality "
    "(readability, structure, naming, idiomatic Python), not correctness, which the tests already measured. "
    "Never write a corrected or complete solution and never include code longer than one line. "
    'Answer with one JSON object: {"quality": number from 0 to 1, "feedback": "2-3 encouraging sentences '
    'for the student", "strengths": ["..."], "improvements": ["..."]} (at most 4 items per list).'
)


@dataclass(frozen=True)
class LLMReview:
    quality: float
    feedback: str
    strengths: list[str]
    improvements: list[str]


async def llm_review(llm: LLM, *, title: str, description: str, code: str, summary: str) -> LLMReview | None:
    """The LLM's view of the code, or None when it fails or answers nonsense (the static measures then
    stand in). The reference solution is never sent."""
    prompt = Prompt(
        system=LLM_REVIEW_SYSTEM,
        messages=(
            ChatTurn(
                "user",
                f"Exercise: {title}\n\n{description}\n\nTest results: {summary}\n\n"
                f"Student's code:\n```python\n{code}\n```",
            ),
        ),
        max_tokens=LLM_QUALITY_MAX_TOKENS,
    )
    try:
        completion = await llm.complete(prompt, json_mode=True)
        data = json.loads(completion.text)
        quality = min(max(float(data["quality"]), 0.0), 1.0)
        feedback = str(data["feedback"]).strip()
        strengths = [str(item) for item in data.get("strengths", [])][:MAX_LISTED]
        improvements = [str(item) for item in data.get("improvements", [])][:MAX_LISTED]
    except LLMError as error:
        log.warning("grading.llm_failed", provider=error.provider, reason=error.reason)
        return None
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("grading.llm_bad_answer")
        return None
    if not feedback:
        return None
    return LLMReview(quality, feedback, strengths, improvements)


# --- the whole review ------------------------------------------------------------------------------


async def analyse_here(code: str) -> tuple[list[str], StaticQuality]:
    """pyflakes and the static measures in this process, in a thread: only for a sandbox whose report is not
    trusted for them (Piston). Our runner sends both with the run (sandbox/analysis.py)."""
    return await asyncio.to_thread(lambda: (lint(code), static_quality(code)))


async def review(
    *,
    code: str,
    status: str,
    tests_passed: int,
    tests_total: int,
    results: list[dict[str, Any]],
    duration_ms: int | None,
    reference_ms: int | None,
    error_line: int | None,
    llm: LLM | None,
    title: str,
    description: str,
    language: str = "python",
    style_findings: list[str] | None = None,
    static: StaticQuality | None = None,
) -> Review:
    """`style_findings`: what the sandbox's style check found in a language it checks (RunResult.style); for
    Python, with `static`, the runner's pyflakes findings and static measures (RunResult.quality)."""
    correctness = tests_passed / tests_total if tests_total else 0.0
    is_python = language == "python"
    if is_python and style_findings is not None and static is not None:
        findings, quality = list(style_findings), static
    elif is_python:
        findings, quality = await analyse_here(code)
    else:
        # No static measure of quality for this language here: not scored unless an LLM judges it, and style
        # only where the sandbox checked it; an unscored part's weight goes to the scored ones (grade_of).
        findings, quality = list(style_findings or []), StaticQuality(0.0, [], [], [])
    style = style_score(findings) if is_python or style_findings is not None else None
    efficiency = efficiency_score(duration_ms, reference_ms) if status in ("passed", "failed") else 0.0
    feedback, strengths, improvements = offline_feedback(
        status=status,
        tests_passed=tests_passed,
        tests_total=tests_total,
        failed=[result for result in results if not result.get("passed")],
        error_line=error_line,
        findings=findings,
        quality=quality,
        efficiency=efficiency,
    )
    quality_score: float | None = quality.score if is_python else None
    if llm is not None and status in ("passed", "failed"):
        summary = f"{tests_passed} of {tests_total} tests pass"
        judged = await llm_review(llm, title=title, description=description, code=code, summary=summary)
        if judged is not None:
            quality_score, feedback = judged.quality, judged.feedback
            strengths, improvements = judged.strengths or strengths, judged.improvements or improvements
    rubric = {
        "correctness": round(correctness, 3),
        "quality": None if quality_score is None else round(quality_score, 3),
        "efficiency": round(efficiency, 3),
        "style": None if style is None else round(style, 3),
    }
    grade = grade_of(correctness, quality_score, efficiency, style)
    issues = (
        learner_mistakes.style_issues(findings, quality.long_functions, quality.deep_functions, quality.poor_names)
        if status in ("passed", "failed")
        else []
    )
    return Review(rubric, grade, feedback, strengths, improvements, issues)
