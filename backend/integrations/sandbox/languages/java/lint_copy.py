"""The copy of a Java submission that javac lints: its `@SuppressWarnings` disarmed (build.sh, docs/SECURITY.md).

javac obeys `@SuppressWarnings` in the file it lints, so a submission could declare its own lint clean. This
copy names an annotation of ours instead, one javac does not obey, wherever the real one is written: bare or
qualified (`java.lang.SuppressWarnings`), with whitespace or comments between the names, or spelled with
Unicode escapes (javac reads `\\u0053` as `S` before anything else). Strings, characters and comments are
left alone, and every line stays where it was, so a finding's line is the submission's. Runs in the compile
sandbox with the sandbox's own Python: `python3 lint_copy.py SOURCE COPY`.
"""

import re
import sys

KEPT = "CodementorLintKept"  # declared at the end of the copy (build.sh)
# Line terminators stay escaped: javac counts lines in the file as written, and so must the copy.
ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u+(?!000[aAdD])([0-9a-fA-F]{4})")
IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def unescaped(text: str) -> str:
    """Java's Unicode escapes decoded (a `\\u` after an odd number of backslashes is one)."""
    return ESCAPE.sub(lambda found: found.group(1) + chr(int(found.group(2), 16)), text)


def skip_blank(text: str, at: int) -> int:
    """The index after any whitespace and comments from `at`."""
    while at < len(text):
        if text[at].isspace():
            at += 1
        elif text.startswith("//", at):
            end = text.find("\n", at)
            at = len(text) if end < 0 else end
        elif text.startswith("/*", at):
            end = text.find("*/", at + 2)
            at = len(text) if end < 0 else end + 2
        else:
            break
    return at


def literal_end(text: str, at: int) -> int:
    """The index after the string, text block or character literal that starts at `at`."""
    if text.startswith('"""', at):
        end = at + 3
        while end < len(text) and not text.startswith('"""', end):
            end += 2 if text[end] == "\\" else 1
        return min(len(text), end + 3)
    quote, end = text[at], at + 1
    while end < len(text) and text[end] not in (quote, "\n"):
        end += 2 if text[end] == "\\" else 1
    return min(len(text), end + 1)


def disarmed(text: str) -> str:
    """`text` with every `@SuppressWarnings` (however written) naming `KEPT`, on the same lines."""
    out: list[str] = []
    at = 0
    while at < len(text):
        char = text[at]
        if char in "\"'":
            end = literal_end(text, at)
        elif text.startswith(("//", "/*"), at):
            end = skip_blank(text, at)
        elif char == "@":
            end, last = at + 1, ""
            while (name := IDENTIFIER.match(text, skip_blank(text, end))) is not None:
                end, last = name.end(), name.group()
                after = skip_blank(text, end)
                if not text.startswith(".", after) or text.startswith("...", after):
                    break
                end = after + 1
            if last == "SuppressWarnings":
                out.append("@" + KEPT + "\n" * text.count("\n", at, end))
                at = end
                continue
            end = max(end, at + 1) if last else at + 1
        else:
            end = at + 1
        out.append(text[at:end])
        at = end
    return "".join(out)


def main() -> None:
    source, copy = sys.argv[1], sys.argv[2]
    with open(source, encoding="utf-8", errors="surrogateescape") as file:
        text = file.read()
    with open(copy, "w", encoding="utf-8", errors="surrogateescape") as file:
        file.write(disarmed(unescaped(text)))


if __name__ == "__main__":
    main()
