"""A local, IAM-enforcing stand-in for the deployed Function URL (moto + 127.0.0.1)."""
