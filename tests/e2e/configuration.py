"""The one non-default configuration the e2e layer deploys beside the default (issue 10).

One source of truth for both layers: tests/e2e deploys it and observes it through the signed URL
(conftest.py, test_configured_system.py); tests/contract snapshots its template
(test_template_snapshot.py) and checks that each value lands (test_config_template.py). So the
snapshot covers exactly what the e2e layer deploys; the e2e deployment adds only its stack name
and janitor tags (targets.e2e_context), which the normalized template does not contain.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Unlike the defaults (10000 rows, 30 s, Dev, 1024 MB) in every setting the URL lets us observe:
# a small row limit, a short timeout, another alias, more memory. `-c key=value` strings.
E2E_CONFIGURED_CONTEXT: Mapping[str, str] = MappingProxyType(
    {
        "maxRows": "5",
        "timeoutSeconds": "3",
        "aliasName": "Canary",
        "memorySize": "2048",
    }
)
