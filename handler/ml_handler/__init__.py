"""XGBoost inference behind a Lambda Function URL (payload format 2.0)."""
