"""The model library cross-compiles for the arm64 function (aarch64) and exports the ABI."""

from __future__ import annotations

import subprocess
import sys

from model_compiler.build import compile_model

EXPORTS = {
    "ml_abi_version",
    "ml_num_features",
    "ml_num_trees",
    "ml_metadata",
    "ml_feature_name",
    "ml_feature_name_size",
    "ml_feature_type",
    "ml_model_sha256",
    "ml_xgboost_version",
    "ml_predict",
    "ml_json_capacity",
    "ml_format_json",
    "ml_parse_batch",
}
EM_AARCH64 = 183


def test_library_cross_compiles_for_aarch64_with_exports(small_model_paths, tmp_path):
    # zig's cc (ziglang from PyPI, pinned in requirements-dev.txt) targets aarch64 glibc.
    cc = f"{sys.executable} -m ziglang cc"
    artifact = compile_model(
        small_model_paths["json"],
        tmp_path / "arm64",
        cc=cc,
        target_args=("-target", "aarch64-linux-gnu"),
    )
    header = artifact.library.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert header[4] == 2  # 64-bit
    assert int.from_bytes(header[18:20], "little") == EM_AARCH64
    symbols = subprocess.run(
        ["readelf", "--dyn-syms", "--wide", str(artifact.library)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    exported = {
        fields[7]
        for fields in (line.split() for line in symbols.splitlines())
        if len(fields) >= 8 and fields[4] == "GLOBAL" and fields[6] != "UND"
    }
    assert exported >= EXPORTS
    # -fvisibility=hidden: the per-tree functions stay private.
    assert not any(name.startswith("tree_") for name in exported)
