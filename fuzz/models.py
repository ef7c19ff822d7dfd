"""Generated XGBoost models for the compiler's differential fuzzing, written as xgboost's own JSON.

Shapes training would rarely produce: thresholds at the float32 extremes and among the
subnormals, leaves and base scores far from zero, a feature no split ever sees a value of
(always missing), depths 1-12 and up to 2,000 trees. xgboost loads the same text (the oracle) that
model_compiler compiles, so both read every number from one spelling.
"""

from __future__ import annotations

import json
import random
import struct
from dataclasses import dataclass

FLOAT32_MAX = struct.unpack("<f", struct.pack("<I", 0x7F7FFFFF))[0]
SMALLEST_SUBNORMAL = struct.unpack("<f", struct.pack("<I", 1))[0]
LARGEST_SUBNORMAL = struct.unpack("<f", struct.pack("<I", 0x007FFFFF))[0]
SMALLEST_NORMAL = struct.unpack("<f", struct.pack("<I", 0x00800000))[0]
# Thresholds worth a split: the ends of the range, the subnormals, zero's neighbours, plain values.
EXTREMES = (
    FLOAT32_MAX,
    -FLOAT32_MAX,
    SMALLEST_SUBNORMAL,
    -SMALLEST_SUBNORMAL,
    LARGEST_SUBNORMAL,
    SMALLEST_NORMAL,
    -SMALLEST_NORMAL,
    0.0,
    1.0,
    -1.0,
)


def float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def from_bits(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


def bits_of(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def next_up(value: float) -> float:
    """The next float32 towards +infinity (from a finite float32)."""
    if value == 0:
        return SMALLEST_SUBNORMAL
    bits = bits_of(value)
    return from_bits(bits + 1 if value > 0 else bits - 1)


def next_down(value: float) -> float:
    return -next_up(-value)


@dataclass(frozen=True, kw_only=True)
class ModelShape:
    features: int = 4
    max_depth: int = 6
    trees: int = 20
    missing_feature: int = 3  # no training value: every split on it is decided by default_left
    base_score: float = 0.5
    leaf_scale: float = 1.0


def random_shape(rng: random.Random, *, max_trees: int = 2000) -> ModelShape:
    # Many trees only with shallow depths: depth 12 x 2,000 trees would be gigabytes of C.
    depth = rng.randint(1, 12)
    trees = rng.choice([1, 2, 7, rng.randint(1, max(1, min(max_trees, 2**14 // 2**depth)))])
    return ModelShape(
        features=rng.randint(1, 6),
        max_depth=depth,
        trees=trees,
        missing_feature=rng.randint(0, 5),
        base_score=rng.choice([0.5, 0.0, -1e30, 3.0e38, 1e-40, rng.uniform(-1e6, 1e6)]),
        leaf_scale=rng.choice([1.0, 1e-3, 1e30, 1e-39]),
    )


def _threshold(rng: random.Random) -> float:
    kind = rng.random()
    if kind < 0.35:
        return rng.choice(EXTREMES)
    if kind < 0.5:  # a random subnormal
        return from_bits(rng.randint(1, 0x007FFFFF) | (0x80000000 if rng.random() < 0.5 else 0))
    if kind < 0.6:  # any finite float32
        while True:
            value = from_bits(rng.getrandbits(32))
            if value == value and abs(value) <= FLOAT32_MAX:
                return value
    return float32(rng.gauss(0, 10))


def _tree(rng: random.Random, shape: ModelShape, tree_id: int) -> dict[str, object]:
    left: list[int] = []
    right: list[int] = []
    parents: list[int] = []
    conditions: list[float] = []
    indices: list[int] = []
    default_left: list[int] = []

    def node(parent: int) -> int:
        left.append(-1)
        right.append(-1)
        parents.append(parent)
        conditions.append(0.0)
        indices.append(0)
        default_left.append(0)
        return len(left) - 1

    def grow(index: int, depth: int) -> None:
        split = depth < shape.max_depth and (depth == 0 or rng.random() < 0.8)
        if not split:
            conditions[index] = float32(rng.uniform(-1, 1) * shape.leaf_scale)
            return
        conditions[index] = _threshold(rng)
        indices[index] = rng.randrange(shape.features)
        default_left[index] = rng.randint(0, 1)
        # Siblings side by side, as xgboost lays them out: its predictor takes the right child
        # as the left one + 1.
        left[index] = node(index)
        right[index] = node(index)
        grow(left[index], depth + 1)
        grow(right[index], depth + 1)

    grow(node(2147483647), 0)
    count = len(left)
    return {
        "base_weights": conditions,
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
        "default_left": default_left,
        "id": tree_id,
        "left_children": left,
        "loss_changes": [0.0] * count,
        "parents": parents,
        "right_children": right,
        "split_conditions": conditions,
        "split_indices": indices,
        "split_type": [0] * count,
        "sum_hessian": [1.0] * count,
        "tree_param": {
            "num_deleted": "0",
            "num_feature": str(shape.features),
            "num_nodes": str(count),
            "size_leaf_vector": "1",
        },
    }


def feature_names(count: int) -> list[str]:
    # Prefixes of one another: the fast path's key lookup must compare whole keys.
    return ["x", "xy", "y0", "xy1", "z", "zz"][:count]


def generate_model(shape: ModelShape, *, seed: int, names: list[str] | None = None) -> bytes:
    """An XGBoost 3.x JSON model (reg:squarederror) with the given shape, from seed; names:
    other feature names than feature_names()'s."""
    rng = random.Random(seed)
    trees = [_tree(rng, shape, index) for index in range(shape.trees)]
    document = {
        "learner": {
            "attributes": {},
            "feature_names": names or feature_names(shape.features),
            "feature_types": ["float"] * shape.features,
            "gradient_booster": {
                "model": {
                    "cats": {"enc": [], "feature_segments": [], "sorted_idx": []},
                    "gbtree_model_param": {
                        "num_parallel_tree": "1",
                        "num_trees": str(shape.trees),
                    },
                    "iteration_indptr": list(range(shape.trees + 1)),
                    "tree_info": [0] * shape.trees,
                    "trees": trees,
                },
                "name": "gbtree",
            },
            "learner_model_param": {
                "base_score": f"[{float32(shape.base_score)!r}]",
                "boost_from_average": "1",
                "num_class": "0",
                "num_feature": str(shape.features),
                "num_target": "1",
            },
            "objective": {"name": "reg:squarederror", "reg_loss_param": {"scale_pos_weight": "1"}},
        },
        "version": [3, 2, 0],
    }
    return json.dumps(document).encode()


def thresholds_of(model: bytes) -> list[tuple[int, float]]:
    """Every split's (feature, threshold) in the model."""
    learner = json.loads(model)["learner"]
    found = set()
    for tree in learner["gradient_booster"]["model"]["trees"]:
        for index, child in enumerate(tree["left_children"]):
            if child != -1:
                found.add((tree["split_indices"][index], float32(tree["split_conditions"][index])))
    return sorted(found)


def rows_on_thresholds(
    model: bytes, *, features: int, missing_feature: int, rng: random.Random, rows: int
) -> list[list[float]]:
    """Rows whose values sit on split thresholds, one float32 ulp either side, or NaN; the
    always-missing feature (when the model has it) is NaN in every row."""
    splits = thresholds_of(model) or [(0, 0.0)]
    by_feature: dict[int, list[float]] = {}
    for feature, threshold in splits:
        by_feature.setdefault(feature, []).append(threshold)
    table = []
    for _ in range(rows):
        row = []
        for feature in range(features):
            if feature == missing_feature or rng.random() < 0.1:
                row.append(float("nan"))
                continue
            threshold = rng.choice(by_feature.get(feature) or [rng.choice(EXTREMES)])
            step = rng.choice((next_down, None, next_up))
            value = threshold if step is None else step(threshold)
            row.append(value if abs(value) <= FLOAT32_MAX else threshold)
        table.append(row)
    return table
