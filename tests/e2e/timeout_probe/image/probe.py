"""The timeout probe's handler: sleeps for the requested seconds (at most 60), then answers.

The inference handler has no request that legitimately runs for seconds (every batch is bounded
by maxRows and 6 MB and takes milliseconds), and must not get a sleep switch. So the e2e layer
deploys this code with the configuration under test instead, to see what the Function URL does
when an invocation outlives the configured timeout. Test code only: never in the real image.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

MAX_SECONDS = 60.0


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raw = event.get("body") or "{}"
    if event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8")
    seconds = min(max(float(json.loads(raw).get("seconds", 0)), 0.0), MAX_SECONDS)
    told_ms = context.get_remaining_time_in_millis()
    time.sleep(seconds)
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"slept_seconds": seconds, "remaining_time_in_millis": told_ms}),
    }
