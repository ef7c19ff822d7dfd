"""A stand-in for the `docker` CLI (CDK_DOCKER) in the AWS rehearsal: never contacts a registry.

The pinned CDK CLI publishes an image asset with `docker login <account>.dkr.ecr.<region>...`,
`inspect`, `build`, `tag` and `push`; the nightly harness `pull`s the base image and reads its
digest with `image inspect`. This stub checks each command line the way Docker would
refuse it, records it (never the login password) as one JSON line in $DOCKER_STUB_LOG, and on
`push` registers the image in the ECR that AWS_ENDPOINT_URL points at (the rehearsal's moto),
so the asset is "published" exactly where the stack's ImageUri says. Anything else fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

_ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com$")
_ECR_IMAGE = re.compile(
    r"^(?P<host>\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com)/(?P<repo>[a-z0-9._/-]+):(?P<tag>[\w.-]+)$"
)


DOCKER_STUB_AGENT = "cdk-ml-lambda-docker-stub"


def _state() -> Path:
    return Path(os.environ["DOCKER_STUB_LOG"]).with_suffix(".tags.json")


def _tags() -> dict[str, str]:
    path = _state()
    return json.loads(path.read_text()) if path.exists() else {}


def _record(command: str, **details: object) -> None:
    with open(os.environ["DOCKER_STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"command": command, **details}) + "\n")


def _fail(message: str) -> int:
    print(f"docker-stub: {message}", file=sys.stderr)
    return 1


def _login(args: list[str]) -> int:
    if len(args) != 4 or args[0] != "--username" or args[2] != "--password-stdin":
        return _fail(f"unexpected login arguments: {args[:3]}")
    password = sys.stdin.read()
    host = args[3]
    if not _ECR_HOST.match(host) or not password:
        return _fail(f"login to {host!r} without an ECR registry or a password")
    _record("login", username=args[1], registry=host, password_given=True)
    return 0


def _build(args: list[str]) -> int:
    if not args or args[-1] != "." or "--tag" not in args:
        return _fail(f"unexpected build arguments: {args}")
    context = Path.cwd()
    dockerfile = context / "Dockerfile"
    if not dockerfile.is_file():
        return _fail(f"no Dockerfile in the build context {context}")
    tag = args[args.index("--tag") + 1]
    platform = args[args.index("--platform") + 1] if "--platform" in args else None
    digest = hashlib.sha256(dockerfile.read_bytes()).hexdigest()
    _save({**_tags(), tag: digest})
    _record("build", tag=tag, platform=platform, context=str(context), args=args)
    return 0


def _save(tags: dict[str, str]) -> None:
    _state().write_text(json.dumps(tags))


def _inspect(args: list[str]) -> int:
    found = len(args) == 1 and args[0] in _tags()
    _record("inspect", tag=args[0] if args else None, found=found)
    return 0 if found else 1  # Docker's exit code 1: no such image


def _tag(args: list[str]) -> int:
    tags = _tags()
    if len(args) != 2 or args[0] not in tags:
        return _fail(f"tag: no such image {args[:1]}")
    _save({**tags, args[1]: tags[args[0]]})
    _record("tag", source=args[0], target=args[1])
    return 0


def _pull(args: list[str]) -> int:
    """The nightly pulls the base image fresh: a public image, recorded with a digest."""
    if len(args) != 1 or "." not in args[0].split("/")[0]:
        return _fail(f"pull: expected one fully qualified image, got {args}")
    digest = hashlib.sha256(f"base:{args[0]}".encode()).hexdigest()
    _save({**_tags(), args[0]: digest})
    _record("pull", image=args[0], digest=f"sha256:{digest}")
    return 0


def _image(args: list[str]) -> int:
    """`image inspect --format {{json .RepoDigests}} IMAGE`, for a pulled image."""
    if args[:3] != ["inspect", "--format", "{{json .RepoDigests}}"] or len(args) != 4:
        return _fail(f"image: unexpected arguments {args}")
    image = args[3]
    if image not in _tags():
        return _fail(f"image inspect: no such image {image}")
    repository = image.rsplit(":", 1)[0]
    print(json.dumps([f"{repository}@sha256:{_tags()[image]}"]))
    _record("image-inspect", image=image)
    return 0


def _push(args: list[str]) -> int:
    tags = _tags()
    match = _ECR_IMAGE.match(args[0]) if len(args) == 1 else None
    if match is None or args[0] not in tags:
        return _fail(f"push: not a tagged ECR image: {args}")
    import boto3  # only here: the other commands must not need it
    from botocore.config import Config

    # Marked: the rehearsal's policy check leaves out what stands in for the registry protocol.
    marked = Config(user_agent_extra=DOCKER_STUB_AGENT)

    account, region = _ECR_HOST.match(match["host"]).group("account", "region")  # type: ignore[union-attr]
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 0,
            "digest": f"sha256:{tags[args[0]]}",
        },
        "layers": [],
    }
    boto3.client("ecr", region_name=region, config=marked).put_image(
        registryId=account,
        repositoryName=match["repo"],
        imageManifest=json.dumps(manifest),
        imageTag=match["tag"],
    )
    _record("push", image=args[0], repository=match["repo"], tag=match["tag"])
    return 0


COMMANDS = {
    "login": _login,
    "build": _build,
    "inspect": _inspect,
    "tag": _tag,
    "push": _push,
    "pull": _pull,
    "image": _image,
}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--config"]:
        argv = argv[2:]
    if not argv or argv[0] not in COMMANDS:
        _record("unsupported", args=argv[:1])
        return _fail(f"unsupported command {argv[:1]}")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
