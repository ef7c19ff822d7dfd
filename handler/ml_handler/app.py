"""Lambda entry point. The model loads once per execution environment, at init."""

from __future__ import annotations

from .config import HandlerConfig
from .service import InferenceService

_service = InferenceService.from_config(HandlerConfig.from_env())


def lambda_handler(event: dict, context: object) -> dict:
    return _service.handle(event, context)
