"""Differential fuzzing of the C every model library carries (python -m fuzz; see __main__)."""
