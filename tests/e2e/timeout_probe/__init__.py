"""The timeout probe: the real CDK app deploying ./image (a function that sleeps on request)."""

# For targets.local_deployment / aws_deployment: the Python arguments that run the probe's app.
APP = ("-m", "tests.e2e.timeout_probe.app")
