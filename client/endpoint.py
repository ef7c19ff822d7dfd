"""The Function URL itself: what a usable one looks like and which region it is in."""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

from .errors import ConfigurationError

# <url-id>.lambda-url.<region>.on.aws (and the China partition's domain).
_FUNCTION_URL_HOST_RE: Final = re.compile(
    r"[a-z0-9]+\.lambda-url\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.on\.(?:aws|amazonwebservices\.com\.cn)"
)
_LOOPBACK_NAMES: Final = frozenset({"localhost"})


def region_from_function_url(url: str) -> str | None:
    """The region in a Function URL's host name, or None (e.g. a local stand-in's URL)."""
    host = urlsplit(url).hostname or ""
    match = _FUNCTION_URL_HOST_RE.fullmatch(host)
    return match.group("region") if match else None


def validate_endpoint_url(url: str) -> str:
    """`url`, if requests may be signed and sent to it.

    Plain http is accepted for loopback hosts only (a local stand-in): elsewhere the session
    token and signature would cross the network in clear text.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in {"https", "http"} or not host:
        raise ConfigurationError(f"endpoint URL must be an https:// URL, got {url!r}")
    if parts.username or parts.password:
        raise ConfigurationError("endpoint URL must not contain user information")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigurationError(
            f"refusing to send signed requests over plain http to {host}: use https "
            "(http is allowed for 127.0.0.1/localhost only)"
        )
    return url


def resolve_region(*, explicit: str | None, endpoint_url: str, fallback: str | None = None) -> str:
    """The signing region: explicit, else from the URL's host, else `fallback` (outputs)."""
    region = explicit or region_from_function_url(endpoint_url) or fallback
    if not region:
        raise ConfigurationError(
            f"cannot tell the region of {endpoint_url}: pass --region (or use outputs with Region)"
        )
    return region


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
