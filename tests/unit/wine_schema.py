"""The bundled model's schema as the issue and README state it: an oracle kept apart from
training/train.py, so a reordered or renamed feature there turns tests red."""

from __future__ import annotations

MEASUREMENTS = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
]
WINE_FEATURES = [*MEASUREMENTS, "color_red", "color_white"]
