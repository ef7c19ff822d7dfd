"""What the docs name, read from README.md and docs/*.md: code spans, shell commands, links.

Shared by test_docs.py (names exist) and test_local_endpoint.py (the stand-in page's shell blocks
run against a deployment)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}

_FENCE = re.compile(r"^```(\w*)\s*$")
_INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Named:
    """Something a page names, and where: `page:line` for the failure message."""

    text: str
    page: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Block:
    language: str
    page: Path
    line: int  # of the opening fence
    body: str

    def commands(self) -> list[str]:
        """Its command lines: continuations joined, comments and blank lines dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.body)
        found = []
        for raw in joined.splitlines():
            line = _strip_comment(raw).strip()
            if line:
                found.append(line)
        return found


def _strip_comment(line: str) -> str:
    """The line without a trailing `# comment` (a `#` outside quotes, after whitespace)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line


def blocks(page: Path) -> list[Block]:
    found: list[Block] = []
    language: str | None = None
    start = 0
    body: list[str] = []
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        fence = _FENCE.match(line)
        if fence and language is None:
            language, start, body = fence[1] or "text", number, []
        elif fence or (line.strip() == "```" and language is not None):
            found.append(Block(language or "text", page, start, "\n".join(body)))
            language = None
        elif language is not None:
            body.append(line)
    return found


def prose_lines(page: Path) -> Iterator[tuple[int, str]]:
    """The lines outside fenced blocks."""
    inside = False
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            yield number, line


def inline_code(page: Path) -> list[Named]:
    return [
        Named(match[1], page, number)
        for number, line in prose_lines(page)
        for match in _INLINE_CODE.finditer(line)
    ]


def links(page: Path) -> list[Named]:
    return [
        Named(match[1], page, number)
        for number, line in prose_lines(page)
        for match in _LINK.finditer(line)
    ]


def shell_commands() -> list[Named]:
    """Every command the docs show: shell blocks' lines and inline code that is a command."""
    found = []
    for page in PAGES:
        for block in blocks(page):
            if block.language in SHELL_LANGUAGES:
                found += [Named(c, page, block.line) for c in block.commands()]
        for code in inline_code(page):
            if re.match(r"(\./dev|python -m|ml-invoke|tox)\b", code.text):
                found.append(code)
    return found


def simple_commands(command: str) -> list[list[str]]:
    """`a && (b | c); d` as its simple commands' words, leading `VAR=value`s and `env` dropped."""
    lexer = shlex.shlex(command.replace("…", ""), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # prose in a code span (`<the image's CMD>`): words, as written
        tokens = command.split()
    words: list[str] = []
    result = []
    for token in [*tokens, ";"]:
        if token and set(token) <= set("&|;()"):
            while words and (words[0] == "env" or re.match(r"^[A-Z_][A-Z0-9_]*=", words[0])):
                words.pop(0)
            if words:
                result.append(words)
            words = []
        else:
            words.append(token.strip("[]"))
    return result
