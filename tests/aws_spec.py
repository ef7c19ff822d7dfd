"""The numbers the stand-in's boundary tests expect, as literals from AWS's documentation and
ours: a test that imported its limit from the module it tests would follow that constant
wherever a bug moved it. The product never imports this module."""

# Lambda quotas, "Invocation payload (request and response): 6 MB each for request and response
# (synchronous)"; Lambda's 413 message names the number of bytes.
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
INVOKE_PAYLOAD_BYTES = 6_291_456

# The Runtime API refuses a larger function response with 413 RequestEntityTooLarge,
# "Exceeded maximum allowed payload size (6291556 bytes)." (100 bytes above the payload quota).
RUNTIME_API_RESPONSE_BYTES = 6_291_556

# The stack's documented defaults (README, configuration): the deployed function's settings.
STACK_TIMEOUT_SECONDS = 30
STACK_MEMORY_MB = 1024

# What Lambda answers (403, in the body's "Message") when it refuses a Function URL request.
MSG_FORBIDDEN = "Forbidden"
MSG_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
MSG_INVALID_TOKEN = "The security token included in the request is invalid."
MSG_EXPIRED_TOKEN = "The security token included in the request is expired"
