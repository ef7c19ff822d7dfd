"""The CDK app's stack and constructs."""
