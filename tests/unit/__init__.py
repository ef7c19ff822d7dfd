"""Unit layer: the handler and its model in-process, and the image simulated without Docker."""
