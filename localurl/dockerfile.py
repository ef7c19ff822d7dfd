"""What the stand-in needs from the image's Dockerfile: the CMD's handler and the ENV values."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

# The AWS base images for Python; their bootstrap sets AWS_EXECUTION_ENV=AWS_Lambda_pythonX.Y.
LAMBDA_PYTHON_BASE = re.compile(r"^public\.ecr\.aws/lambda/python:(?P<version>\d+\.\d+)")


@dataclass(frozen=True, kw_only=True)
class ImageSpec:
    handler: str
    environment: dict[str, str]
    base_image: str | None = None  # the FROM of the final stage

    @property
    def execution_env(self) -> str | None:
        """AWS_EXECUTION_ENV in the image; None for an OS-only base image (Lambda sets none)."""
        match = LAMBDA_PYTHON_BASE.match(self.base_image or "")
        return f"AWS_Lambda_python{match['version']}" if match else None


def read_image_spec(dockerfile: Path) -> ImageSpec:
    handler: str | None = None
    base_image: str | None = None
    environment: dict[str, str] = {}
    for instruction, argument in logical_instructions(dockerfile.read_text()):
        if instruction == "FROM":
            words = [word for word in argument.split() if not word.startswith("--")]
            base_image = words[0] if words else None
        elif instruction == "CMD":
            command = json.loads(argument) if argument.startswith("[") else shlex.split(argument)
            if len(command) != 1:
                raise ValueError(f"{dockerfile}: CMD must name exactly one handler, got {command}")
            handler = command[0]
        elif instruction == "ENV":
            environment.update(env_pairs(argument))
    if handler is None:
        raise ValueError(f"{dockerfile}: no CMD naming the handler")
    return ImageSpec(handler=handler, environment=environment, base_image=base_image)


def logical_instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction: comments dropped, continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        instruction, _, argument = full.partition(" ")
        result.append((instruction.upper(), argument.strip()))
    return result


def env_pairs(argument: str) -> dict[str, str]:
    """The variables one ENV instruction sets (both the KEY=value and the legacy form)."""
    parts = shlex.split(argument)
    if parts and "=" not in parts[0]:
        # Legacy form: ENV KEY value with spaces
        return {parts[0]: " ".join(parts[1:])}
    return dict(part.split("=", 1) for part in parts)
