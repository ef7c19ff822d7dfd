"""Physical names: none fixed by default, so copies never collide; names from context."""

from __future__ import annotations

from typing import Any

# Properties naming a resource account- or region-wide: two stacks setting one value collide.
# (AWS::IAM::Policy's PolicyName is scoped to its role, an alias's Name to its function.)
GLOBAL_NAME_PROPERTIES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::S3::Bucket": "BucketName",
}


def _physical_names(template: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (resource["Type"], str(resource["Properties"][GLOBAL_NAME_PROPERTIES[resource["Type"]]]))
        for resource in template["Resources"].values()
        if GLOBAL_NAME_PROPERTIES.get(resource["Type"]) in resource.get("Properties", {})
    }


def test_no_physical_names_when_default(synth_template_dict):
    assert _physical_names(synth_template_dict) == set()


def test_function_has_no_name_when_default(synth_template):
    (function,) = synth_template.find_resources("AWS::Lambda::Function").values()
    assert "FunctionName" not in function["Properties"]


def test_function_name_is_the_original_when_configured(synth_configured):
    synth_configured.template.has_resource_properties(
        "AWS::Lambda::Function", {"FunctionName": "ML-XGBoost"}
    )
    assert _physical_names(synth_configured.template_dict) == {
        ("AWS::Lambda::Function", "ML-XGBoost")
    }


def test_stack_name_is_cdk_ml_lambda_when_default(synth):
    assert synth.stack_artifact.stack_name == "CdkMlLambda"


def test_stack_name_follows_context_when_configured(synth_second_stack, synth_configured):
    assert synth_second_stack.stack_artifact.stack_name == "CdkMlLambdaCopy"
    assert synth_configured.stack_artifact.stack_name == "MlXgboostConfigured"


def test_two_stack_names_share_no_physical_name_when_default(synth, synth_second_stack):
    assert synth.stack_artifact.stack_name != synth_second_stack.stack_artifact.stack_name
    assert (
        _physical_names(synth.template_dict) & _physical_names(synth_second_stack.template_dict)
        == set()
    )
    # Same resources otherwise: the stack name is the only thing a copy changes.
    assert set(synth.template_dict["Resources"]) == set(
        synth_second_stack.template_dict["Resources"]
    )


def test_stack_tags_follow_context_when_configured(synth, synth_configured):
    # Stack-level tags (the manifest's), which CloudFormation propagates to every resource.
    assert synth_configured.stack_artifact.tags == {
        "cost-center": "ml",
        "owner": "data-science",
    }
    assert synth.stack_artifact.tags == {}
