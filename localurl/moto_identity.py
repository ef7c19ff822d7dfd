"""Access keys issued by the in-process moto, resolved to their secret and identity.

moto has no API that returns a secret once issued (neither does AWS), so the verifier reads
moto's in-memory backends. Every touch of moto internals is in `lookup_access_key`: when a
moto upgrade renames something, this one function is what breaks. It works for moto under
`mock_aws` and for `ThreadedMotoServer` in the same process, which share these backends.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .sigv4_verify import Credentials

_ACTIVE = "Active"


def lookup_access_key(access_key: str, *, account_id: str | None = None) -> Credentials | None:
    """The credentials behind `access_key` (role session or IAM user key), or None.

    None also for an inactive user key, which AWS treats exactly like an unknown one.
    `account_id` restricts the search to one account; by default all accounts moto knows.
    """
    # Imported here so that importing this module never initialises moto's backends.
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    # dict.items(), not [...]: indexing a BackendDict creates the account or partition.
    for account, sts_partitions in list(sts_backends.items()):
        if account_id is not None and account != account_id:
            continue
        for sts in list(sts_partitions.values()):
            for role in list(sts.assumed_roles):
                if role.access_key_id != access_key:
                    continue
                return Credentials(
                    access_key=role.access_key_id,
                    secret_key=role.secret_access_key,
                    session_token=role.session_token,
                    expiration=_aware(role.expiration),
                    account_id=role.account_id,
                    user_arn=role.arn,
                    user_id=role.user_id,
                    principal_arn=role.role_arn,
                )
    for account, iam_partitions in list(iam_backends.items()):
        if account_id is not None and account != account_id:
            continue
        for iam in list(iam_partitions.values()):
            for user in list(iam.users.values()):
                for key in list(user.access_keys):
                    if key.access_key_id != access_key:
                        continue
                    if key.status != _ACTIVE:
                        return None
                    return Credentials(
                        access_key=key.access_key_id,
                        secret_key=key.secret_access_key,
                        account_id=user.account_id,
                        user_arn=user.arn,
                        user_id=user.id,
                        principal_arn=user.arn,
                    )
    return None


def _aware(moment: datetime) -> datetime:
    # moto keeps naive UTC datetimes.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
