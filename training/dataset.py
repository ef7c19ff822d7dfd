"""Reading the training CSV into a feature matrix in a given feature order, and the holdout split.

One reader for training, the card, the quality gate and the golden file. A feature named
`<column>_<value>` that is not itself a column is the indicator of `<column> == <value>` (how
the wine data's `color` becomes `color_red`, `color_white`); any other feature must be a column.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.spec import Split


class DataError(ValueError):
    """The CSV cannot provide the model's features or target."""


@dataclass(frozen=True, kw_only=True)
class Dataset:
    # float64 as parsed from the CSV: the golden file keeps these exact values; training and
    # prediction use the float32 cast, as the handler does.
    values: np.ndarray
    target: np.ndarray
    # The CSV line (1 = header) of every row, and each row's raw columns (for stratifying).
    lines: np.ndarray
    columns: dict[str, list[str]]

    @property
    def features(self) -> np.ndarray:
        return self.values.astype(np.float32)

    def take(self, index: np.ndarray) -> Dataset:
        return Dataset(
            values=self.values[index],
            target=self.target[index],
            lines=self.lines[index],
            columns={name: [column[i] for i in index] for name, column in self.columns.items()},
        )


def read_dataset(path: Path, *, features: Sequence[str], target: str) -> Dataset:
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        fieldnames = list(reader.fieldnames or ())
        getters = [_getter(name, fieldnames, path) for name in features]
        if target not in fieldnames:
            raise DataError(f"{path}: no target column {target!r}")
        rows: list[list[float]] = []
        targets: list[float] = []
        columns: dict[str, list[str]] = {name: [] for name in fieldnames}
        for line, record in enumerate(reader, start=2):
            try:
                rows.append([get(record) for get in getters])
                targets.append(_number(record[target]))
            except (ValueError, TypeError) as exc:
                raise DataError(f"{path}:{line}: {exc}") from None
            for name in fieldnames:
                columns[name].append(record[name])
    if not rows:
        raise DataError(f"{path}: no data rows")
    _check_levels_indicated(columns, features, fieldnames, path)
    return Dataset(
        values=np.asarray(rows, dtype=np.float64).reshape(len(rows), len(features)),
        target=np.asarray(targets, dtype=np.float64),
        lines=np.arange(2, len(rows) + 2),
        columns=columns,
    )


def split(dataset: Dataset, settings: Split) -> tuple[Dataset, Dataset]:
    """(train, holdout): a permutation seeded from the spec, the last fraction held out."""
    order = np.random.default_rng(settings.seed).permutation(len(dataset.target))
    cut = int(len(order) * (1 - settings.holdout_fraction))
    return dataset.take(order[:cut]), dataset.take(order[cut:])


def _getter(name: str, fieldnames: list[str], path: Path) -> Callable[[dict[str, str]], float]:
    if name in fieldnames:
        return lambda record: _number(record[name])
    column, _, level = name.rpartition("_")
    if column in fieldnames and level:

        def indicator(record: dict[str, str]) -> float:
            return float(record[column].strip().lower() == level.lower())

        return indicator
    raise DataError(
        f"{path}: no column for feature {name!r} (nor a column {column!r} it indicates a value of)"
    )


def _check_levels_indicated(
    columns: dict[str, list[str]], features: Sequence[str], fieldnames: list[str], path: Path
) -> None:
    # A value no indicator names (a typo, a third colour) would silently read as all zeros.
    levels: dict[str, set[str]] = {}
    for name in features:
        column, _, level = name.rpartition("_")
        if name not in fieldnames and column in fieldnames:
            levels.setdefault(column, set()).add(level.lower())
    for column, indicated in levels.items():
        for offset, value in enumerate(columns[column]):
            if value.strip().lower() not in indicated:
                raise DataError(
                    f"{path}:{offset + 2}: {column} must be one of {sorted(indicated)}, "
                    f"got {value!r}"
                )


def _number(text: str | None) -> float:
    if text is None:
        raise ValueError("a column is missing on this line")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite value {text!r}")
    return value
