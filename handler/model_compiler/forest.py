"""The part of xgboost's JSON model schema that prediction needs, read and checked.

Reference: xgboost's doc/model.schema (the JSON/UBJSON model format). Anything this compiler does
not reproduce exactly is refused with UnsupportedModel, never compiled into a wrong answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .float32 import nearest_float32

# Objectives whose prediction is the raw margin (identity link): base_score is already in margin
# space and no transform follows the tree sum. Others (logistic, exp links, ranking, multi-class)
# apply libm functions whose results this compiler does not promise to reproduce bit for bit.
IDENTITY_OBJECTIVES = frozenset(
    {
        "reg:squarederror",
        "reg:squaredlogerror",
        "reg:pseudohubererror",
        "reg:absoluteerror",
        "reg:quantileerror",
    }
)
NUMERICAL_FEATURE_TYPES = frozenset({"float", "int", "q", "i"})
_NO_CHILD = -1


class UnsupportedModel(ValueError):
    """The model uses something the compiler cannot reproduce bit for bit."""


@dataclass(frozen=True, kw_only=True)
class Node:
    """An internal node (feature >= 0) or a leaf (feature == -1, value = the leaf's output)."""

    feature: int
    threshold: float
    default_left: bool
    left: int
    right: int
    value: float


@dataclass(frozen=True, kw_only=True)
class Forest:
    feature_names: tuple[str, ...]
    feature_types: tuple[str, ...]
    base_margin: float
    trees: tuple[tuple[Node, ...], ...]
    objective: str
    xgboost_version: str


def parse_model_json(text: str | bytes) -> Forest:
    """Read a model saved as JSON (``Booster.save_raw('json')`` or ``save_model('m.json')``)."""
    # Numbers stay text until nearest_float32 reads them: a double in between could round twice.
    try:
        document = json.loads(text, parse_float=str)
        learner = document["learner"]
        version = ".".join(str(part) for part in document["version"])
        return _forest(learner, version)
    except UnsupportedModel:
        raise
    # ValueError: not JSON, or a number that is none (int("x"), a threshold beyond float32).
    except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
        raise UnsupportedModel(f"not an XGBoost JSON model (missing or malformed {exc})") from exc


def _forest(learner: dict, version: str) -> Forest:
    names = tuple(learner.get("feature_names") or ())
    if not names:
        raise UnsupportedModel(
            "the model has no feature names; the request schema comes from the model, "
            "so retrain with named features (e.g. a DataFrame or feature_names=...)"
        )
    types = tuple(learner.get("feature_types") or ("float",) * len(names))
    categorical = [name for name, kind in zip(names, types, strict=True) if kind == "c"]
    if categorical:
        raise UnsupportedModel(
            f"categorical features are not supported (feature {categorical[0]!r} has type 'c')"
        )
    unknown = sorted(set(types) - NUMERICAL_FEATURE_TYPES)
    if unknown:
        raise UnsupportedModel(f"unsupported feature types {unknown}")
    objective = learner["objective"]["name"]
    if objective not in IDENTITY_OBJECTIVES:
        raise UnsupportedModel(
            f"objective {objective!r} is not supported; supported: {sorted(IDENTITY_OBJECTIVES)}"
        )
    params = learner["learner_model_param"]
    num_target = int(params.get("num_target", "1"))
    num_class = int(params.get("num_class", "0"))
    if num_target != 1 or num_class not in (0, 1):
        raise UnsupportedModel(
            f"multi-output models are not supported (num_target={num_target}, "
            f"num_class={num_class})"
        )
    if objective == "reg:quantileerror":
        quantiles = learner["objective"].get("quantile_loss_param", {}).get("quantile_alpha", "")
        if "," in str(quantiles):
            raise UnsupportedModel("multi-quantile models are multi-output: not supported")
    if int(params["num_feature"]) != len(names):
        raise UnsupportedModel(
            f"num_feature is {params['num_feature']} but there are {len(names)} feature names"
        )
    booster = learner["gradient_booster"]
    if booster["name"] != "gbtree":
        raise UnsupportedModel(f"booster {booster['name']!r} is not supported; only gbtree")
    model = booster["model"]
    if any(int(group) != 0 for group in model["tree_info"]):
        raise UnsupportedModel("trees for more than one output group: not supported")
    trees = tuple(_tree(tree, len(names)) for tree in model["trees"])
    if int(model["gbtree_model_param"]["num_trees"]) != len(trees):
        raise UnsupportedModel("num_trees does not match the number of trees in the model")
    return Forest(
        feature_names=names,
        feature_types=types,
        base_margin=_base_score(params["base_score"]),
        trees=trees,
        objective=objective,
        xgboost_version=version,
    )


def _base_score(raw: str) -> float:
    # xgboost >= 3.1 writes a vector ("[5.7915883E0]"), older versions a scalar ("5.79E0").
    text = raw.strip()
    if text.startswith("["):
        parts = [part for part in text[1:-1].split(",") if part.strip()]
        if len(parts) != 1:
            raise UnsupportedModel(f"base_score {raw!r} has {len(parts)} values; expected one")
        text = parts[0]
    # Identity link: the margin is base_score itself, read as float32 like xgboost does.
    return nearest_float32(text)


def _tree(tree: dict, num_features: int) -> tuple[Node, ...]:
    param = tree["tree_param"]
    if int(param.get("size_leaf_vector", "1")) > 1:
        raise UnsupportedModel("vector-leaf (multi-target) trees are not supported")
    if tree.get("categories_nodes") or any(int(kind) != 0 for kind in tree["split_type"]):
        raise UnsupportedModel("categorical splits are not supported")
    count = int(param["num_nodes"])
    columns = ("left_children", "right_children", "split_indices", "split_conditions")
    if any(len(tree[column]) != count for column in columns):
        raise UnsupportedModel(f"tree {tree.get('id')}: arrays disagree with num_nodes={count}")
    nodes = []
    for index in range(count):
        left = int(tree["left_children"][index])
        right = int(tree["right_children"][index])
        condition = nearest_float32(tree["split_conditions"][index])
        if left == _NO_CHILD:
            nodes.append(
                Node(feature=-1, threshold=0.0, default_left=False, left=-1, right=-1,
                     value=condition)
            )  # fmt: skip
            continue
        feature = int(tree["split_indices"][index])
        if not 0 <= feature < num_features or not (0 < left < count and 0 < right < count):
            raise UnsupportedModel(f"tree {tree.get('id')}: node {index} is malformed")
        nodes.append(
            Node(
                feature=feature,
                threshold=condition,
                default_left=bool(int(tree["default_left"][index])),
                left=left,
                right=right,
                value=0.0,
            )
        )
    return tuple(nodes)
