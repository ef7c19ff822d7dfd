"""The function: container image, timeout, memory, architecture matching the image, logging."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Capture, Match

FUNCTION = "AWS::Lambda::Function"


def _only(template, resource_type: str) -> tuple[str, dict]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {sorted(resources)}"
    return next(iter(resources.items()))


def test_function_is_container_image_when_default(synth_template):
    synth_template.has_resource_properties(
        FUNCTION,
        {
            "PackageType": "Image",
            "Code": {"ImageUri": Match.any_value()},
            "Description": Match.string_like_regexp("XGBoost"),
        },
    )
    _, function = _only(synth_template, FUNCTION)
    # An image function has neither a handler nor a runtime: the image's CMD and base decide.
    assert "Handler" not in function["Properties"]
    assert "Runtime" not in function["Properties"]


def test_function_timeout_is_30_seconds_when_default(synth_template):
    synth_template.has_resource_properties(FUNCTION, {"Timeout": 30})


def test_function_memory_is_1024_mb_when_default(synth_template):
    synth_template.has_resource_properties(FUNCTION, {"MemorySize": 1024})


def test_function_memory_follows_context_when_configured(synth_configured):
    synth_configured.template.has_resource_properties(FUNCTION, {"MemorySize": 2048})


def test_function_environment_caps_rows_and_holds_nothing_else_when_default(synth_template):
    synth_template.has_resource_properties(
        FUNCTION, {"Environment": {"Variables": Match.exact({"MAX_ROWS": "10000"})}}
    )


@pytest.mark.parametrize(
    ("variant", "architecture", "platform"),
    [("synth", "x86_64", "linux/amd64"), ("synth_arm64", "arm64", "linux/arm64")],
)
def test_function_architecture_matches_image_platform_when_configured(
    request, variant, architecture, platform
):
    synthesized = request.getfixturevalue(variant)
    synthesized.template.has_resource_properties(FUNCTION, {"Architectures": [architecture]})
    (image,) = synthesized.image_assets
    # An image built for the other platform fails at invoke with "exec format error".
    assert image["source"]["platform"] == platform


def test_function_image_is_the_staged_handler_asset_when_default(synth):
    (image,) = synth.image_assets
    asset_dir = synth.assembly_dir / image["source"]["directory"]
    assert (asset_dir / "Dockerfile").is_file()
    image_tag = image["destinations"][next(iter(image["destinations"]))]["imageTag"]
    uri = Capture()
    synth.template.has_resource_properties(FUNCTION, {"Code": {"ImageUri": uri}})
    assert image_tag in str(uri.as_object())


def test_log_group_has_retention_when_default(synth_template):
    synth_template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_log_group_retention_follows_context_when_configured(synth_configured):
    synth_configured.template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 7})


def test_function_logs_to_the_stack_log_group_when_default(synth_template):
    log_group_id, _ = _only(synth_template, "AWS::Logs::LogGroup")
    synth_template.has_resource_properties(
        FUNCTION, {"LoggingConfig": {"LogGroup": {"Ref": log_group_id}}}
    )


def test_log_group_has_no_fixed_name_when_default(synth_template):
    _, log_group = _only(synth_template, "AWS::Logs::LogGroup")
    assert "LogGroupName" not in log_group.get("Properties", {})
