"""An XGBoost model file named by MODEL_PATH: compiled on first use by model_compiler, cached by
the model's bytes and the compiler's sources, refused at init with the compiler's message."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest
from ml_handler.config import HandlerConfig
from ml_handler.errors import ModelLoadError
from ml_handler.model import load_model
from model_compiler.cache import PACKAGE_DIR, cache_key, compiler_digest

from tests.unit.small_model import FEATURES, train_small_model


def libraries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/model.so"))


def test_model_file_compiled_once_into_a_folder_named_by_its_key(small_model_paths, tmp_path):
    cache = tmp_path / "cache"
    first = load_model(small_model_paths["json"], cache_dir=str(cache))
    (library,) = libraries(cache)
    raw = small_model_paths["json"].read_bytes()
    assert library.parent.name == cache_key(raw)
    assert (
        library.parent.name
        == hashlib.sha256(compiler_digest() + hashlib.sha256(raw).digest()).hexdigest()
    )
    assert (library.parent / "model.c").is_file()
    built = library.stat().st_mtime_ns
    again = load_model(small_model_paths["json"], cache_dir=str(cache))
    assert libraries(cache) == [library]
    assert library.stat().st_mtime_ns == built  # served from the cache, not compiled again
    assert (first.sha256, again.sha256) == (hashlib.sha256(raw).hexdigest(),) * 2
    assert again.path == small_model_paths["json"]  # the file MODEL_PATH named


def test_other_model_bytes_compile_into_another_folder(small_model_paths, tmp_path):
    cache = tmp_path / "cache"
    for path in small_model_paths.values():  # the same model as JSON and as UBJSON
        load_model(path, cache_dir=str(cache))
    assert len(libraries(cache)) == 2


def test_cached_library_served_when_no_compiler_is_left(small_model_paths, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    load_model(small_model_paths["json"], cache_dir=str(cache))
    monkeypatch.setenv("CC", "no-such-compiler")
    model = load_model(small_model_paths["json"], cache_dir=str(cache))
    assert model.feature_names == FEATURES


def test_compiler_digest_covers_every_python_and_c_source(tmp_path):
    copy = tmp_path / "model_compiler"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert compiler_digest(copy) == compiler_digest()
    sources = sorted(path.name for path in copy.iterdir() if path.suffix in (".py", ".c"))
    assert {"build.py", "codegen.py", "forest.py", "support.c", "request_parse.c"} <= set(sources)
    (copy / "NOTES.md").write_text("not a source")
    assert compiler_digest(copy) == compiler_digest()
    for name in sources:
        original = (copy / name).read_bytes()
        (copy / name).write_bytes(original + b"\n")
        assert compiler_digest(copy) != compiler_digest(), name
        (copy / name).write_bytes(original)
    (copy / "support.c").rename(copy / "support2.c")  # the name counts, not only the bytes
    assert compiler_digest(copy) != compiler_digest()


@pytest.mark.parametrize(
    ("env", "words"),
    [({"CC": "no-such-compiler"}, "no C compiler 'no-such-compiler'"), ({}, "no C compiler 'cc'")],
)
def test_model_load_error_names_the_missing_c_compiler(
    small_model_paths, tmp_path, monkeypatch, env, words
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc on it
    monkeypatch.delenv("CC", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = small_model_paths["json"]
    with pytest.raises(ModelLoadError) as raised:
        load_model(path, cache_dir=str(tmp_path / "cache"))
    assert str(raised.value).startswith(f"cannot compile {path}: {words} on PATH")
    assert libraries(tmp_path / "cache") == []


def test_model_refused_at_init_with_the_compilers_message_and_nothing_cached(tmp_path):
    path = tmp_path / "anonymous.json"
    train_small_model(feature_names=False).save_model(path)
    config = HandlerConfig.from_env(
        {"MODEL_PATH": str(path), "MODEL_CACHE_DIR": str(tmp_path / "c")}
    )
    from ml_handler.service import InferenceService

    with pytest.raises(ModelLoadError) as raised:
        InferenceService.from_config(config)
    assert str(raised.value).startswith(
        f"model_compiler cannot compile {path}: the model has no feature names;"
    )
    assert [entry.name for entry in (tmp_path / "c").iterdir()] == [".lock"]


def test_model_load_error_when_model_compiler_is_not_importable(small_model_paths, monkeypatch):
    # The image holds no model_compiler: a model file there cannot be compiled.
    monkeypatch.setitem(sys.modules, "model_compiler.cache", None)
    path = small_model_paths["json"]
    with pytest.raises(ModelLoadError) as raised:
        load_model(path, cache_dir="/nonexistent")
    assert str(raised.value) == (
        f"{path} is an XGBoost model file, which this handler serves only compiled, and "
        "model_compiler is not importable here (import of model_compiler.cache halted; None in "
        "sys.modules): compile it with `python -m model_compiler MODEL --out DIR` and set "
        "MODEL_PATH to DIR/model.so"
    )


def test_ubjson_model_refused_with_a_reason_when_xgboost_is_not_installed(
    small_model_paths, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(ModelLoadError, match="reading UBJSON needs xgboost installed"):
        load_model(small_model_paths["ubj"], cache_dir=str(tmp_path))


def test_model_load_error_when_the_cache_cannot_be_created(small_model_paths, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would go")
    with pytest.raises(ModelLoadError, match=f"into the model cache {blocker}/models"):
        load_model(small_model_paths["json"], cache_dir=str(blocker / "models"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "~/.cache/cdk-ml-lambda/models"),
        ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/cdk-ml-lambda/models"),
        ({"XDG_CACHE_HOME": "/xdg", "MODEL_CACHE_DIR": "/mine"}, "/mine"),
        ({"XDG_CACHE_HOME": "", "MODEL_CACHE_DIR": ""}, "~/.cache/cdk-ml-lambda/models"),
    ],
)
def test_model_cache_dir_read_from_env(env, expected):
    assert HandlerConfig.from_env(env).model_cache_dir == expected


def test_model_cache_under_home_when_nothing_else_is_set(small_model_paths, tmp_path, monkeypatch):
    for name in ("MODEL_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    load_model(small_model_paths["json"])
    assert len(libraries(tmp_path / ".cache" / "cdk-ml-lambda" / "models")) == 1
