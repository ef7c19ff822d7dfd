"""The Function URL payload format 2.0 event, as AWS documents it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import parse_qsl

# Function URLs pass these content types through as text; everything else (and no content type)
# reaches the function base64-encoded.
# Lambda's synchronous invocation payload limit (its 413 message says 6291456 bytes).
MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024
_TEXT_TYPES = ("application/json", "application/xml", "application/javascript")


@dataclass(frozen=True, kw_only=True)
class IamCaller:
    access_key: str
    account_id: str
    caller_id: str
    user_arn: str
    user_id: str


@dataclass(frozen=True, kw_only=True)
class UrlIdentity:
    account_id: str
    url_id: str
    region: str

    @property
    def domain_name(self) -> str:
        return f"{self.url_id}.lambda-url.{self.region}.on.aws"


def is_text_content(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in _TEXT_TYPES


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    url: UrlIdentity,
    caller: IamCaller | None,
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, object]:
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            # Cookies leave the headers and arrive as a list of their own.
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value

    event: dict[str, object] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
    }
    if cookies:
        event["cookies"] = cookies
    query = _query_parameters(raw_query)
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        # The function owner's account; AWS says "anonymous" when the URL has no auth.
        "accountId": "anonymous" if caller is None else url.account_id,
        "apiId": url.url_id,
        "authentication": None,
        "authorizer": None if caller is None else {"iam": _iam(caller)},
        "domainName": url.domain_name,
        "domainPrefix": url.url_id,
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": _clf_time(now),
        "timeEpoch": int(now * 1000),
    }
    event["pathParameters"] = None
    event["stageVariables"] = None
    if body:
        if is_text_content(joined.get("content-type")):
            event["body"] = body.decode("utf-8", errors="surrogateescape")
            event["isBase64Encoded"] = False
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


def _iam(caller: IamCaller) -> dict[str, object]:
    return {
        "accessKey": caller.access_key,
        "accountId": caller.account_id,
        "callerId": caller.caller_id,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": caller.user_arn,
        "userId": caller.user_id,
    }


def _query_parameters(raw_query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def _clf_time(now: float) -> str:
    # "12/Mar/2020:19:03:58 +0000", the access-log format AWS uses here.
    parts = formatdate(now, usegmt=True).split()  # Thu, 12 Mar 2020 19:03:58 GMT
    return f"{parts[1]}/{parts[2]}/{parts[3]}:{parts[4]} +0000"


def invoke_payload_bytes(event: dict[str, object]) -> int:
    """The size Lambda's 6 MB invocation limit is checked against: the event as JSON, not the
    HTTP body. JSON escaping makes the event larger than the body (each `"` of a JSON body
    becomes `\\"`), so a body well under 6 MiB can still be refused."""
    serialized = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    # Bodies that are not valid UTF-8 were decoded with surrogateescape: count their raw bytes.
    return len(serialized.encode("utf-8", errors="surrogateescape"))


def exceeds_payload_limit(event: dict[str, object]) -> bool:
    return invoke_payload_bytes(event) > MAX_INVOKE_PAYLOAD_BYTES
