"""The compiled model: a shared library built by model_compiler, loaded with ctypes.

This path imports neither numpy nor xgboost: rows arrive as an array('f') buffer, predictions
are computed and formatted as JSON text inside the library.
"""

from __future__ import annotations

import ctypes
import os
from array import array

from .batch import FloatRows
from .errors import ModelLoadError

TYPE_CHECKING = False  # the type checker's constant, without importing typing at init
if TYPE_CHECKING:
    # A str or a pathlib.Path: the handler itself passes str (pathlib costs a cold start ~5 ms).
    StrPath = str | os.PathLike[str]

# model_compiler's codegen.ABI_VERSION: the image holds no model_compiler to import it from.
ABI_VERSION = 3
_size_t = ctypes.c_size_t
_void_p = ctypes.c_void_p
# Output buffers are made by repeating this: ~40x faster than array("f", bytes(n)), which
# converts the zero bytes value by value (10,000 rows x 13 features: 11 µs against 430 µs).
_ZERO = array("f", [0.0])


class CompiledModel:
    """Serves predictions from model_compiler's library; the schema comes from its accessors."""

    def __init__(self, *, library: ctypes.CDLL, path: StrPath) -> None:
        self._library = library  # keeps the library loaded as long as the model lives
        self.path = path  # the file MODEL_PATH named: the library, or the model compiled into it
        count = library.ml_num_features
        count.restype = _size_t
        self._width = width = count()
        name_at = library.ml_feature_name
        name_at.argtypes = (_size_t,)
        name_at.restype = _void_p
        name_size = library.ml_feature_name_size
        name_size.argtypes = (_size_t,)
        name_size.restype = _size_t
        type_at = library.ml_feature_type
        type_at.argtypes = (_size_t,)
        type_at.restype = ctypes.c_char_p
        library.ml_model_sha256.restype = ctypes.c_char_p
        library.ml_xgboost_version.restype = ctypes.c_char_p
        # Byte strings read once here: the schema costs init no JSON parser.
        encoded = [ctypes.string_at(name_at(i), name_size(i)) for i in range(width)]
        self.feature_names = tuple(name.decode("utf-8") for name in encoded)
        self.feature_types = tuple(type_at(i).decode("utf-8") for i in range(width))
        self.sha256: str = library.ml_model_sha256().decode("ascii")
        self.xgboost_version: str = library.ml_xgboost_version().decode("utf-8")
        self._predict = library.ml_predict
        self._predict.argtypes = (_void_p, _size_t, _void_p)
        self._predict.restype = None
        self._format = library.ml_format_json
        self._format.argtypes = (_void_p, _size_t, ctypes.c_char_p)
        self._format.restype = _size_t
        self._capacity = library.ml_json_capacity
        self._capacity.argtypes = (_size_t,)
        self._capacity.restype = _size_t
        self._parse = library.ml_parse_batch
        self._parse.argtypes = (ctypes.c_char_p, _size_t, _void_p, _void_p, _size_t, _void_p)
        self._parse.restype = _size_t
        # Kept on the instance: the library reads these on every call.
        self._names = (ctypes.c_char_p * self._width)(*encoded)
        self._name_lengths = (_size_t * self._width)(*map(len, encoded))

    def parse_batch(self, raw: str | bytes, *, max_rows: int) -> FloatRows | None:
        """The body as float32 rows when it is a plain batch (request_parse.c says which), else
        None: the full parser then decides, with its exact errors."""
        if isinstance(raw, str):
            if not raw.isascii():  # O(1) for a str; the library reads ASCII only
                return None
            raw = raw.encode("ascii")
        width = self._width
        # A row takes at least 2 bytes a value ("[0,0]," for two): a bound on the rows the body
        # can hold, so the buffer is not sized by max_rows for a one-row request.
        capacity = min(max_rows, len(raw) // (2 * width) + 1)
        out = _ZERO * (width * capacity)
        rows = self._parse(
            raw, len(raw), self._names, self._name_lengths, capacity, out.buffer_info()[0]
        )
        if not rows:
            return None
        del out[rows * width :]
        return FloatRows(out, rows=rows, width=width)

    def predict(self, matrix: FloatRows) -> array:
        """float32 predictions, one per row, as array('f')."""
        rows = matrix.rows
        if matrix.width != self._width or len(matrix.values) != rows * self._width:
            raise ValueError(f"expected rows of {self._width} values, got {matrix.width}")
        out = _ZERO * rows
        self._predict(matrix.values.buffer_info()[0], rows, out.buffer_info()[0])
        return out

    def predict_json(self, matrix: FloatRows) -> str:
        """The predictions as the response body: a JSON array of shortest float32 texts."""
        predictions = self.predict(matrix)
        return self.format_json(predictions)

    def format_json(self, predictions: array) -> str:
        count = len(predictions)
        text = ctypes.create_string_buffer(self._capacity(count))
        length = self._format(predictions.buffer_info()[0], count, text)
        return ctypes.string_at(text, length).decode("ascii")

    def metadata(self, *, max_rows: int) -> dict[str, object]:
        """The GET schema."""
        return {
            "features": [
                {"name": name, "type": ftype}
                for name, ftype in zip(self.feature_names, self.feature_types, strict=True)
            ],
            "model_sha256": self.sha256,
            "xgboost_version": self.xgboost_version,
            "max_rows": max_rows,
        }


def load_compiled(path: StrPath, *, source: StrPath | None = None) -> CompiledModel:
    """The library at `path`; `source`: the model file it was compiled from, when MODEL_PATH
    named that."""
    try:
        library = ctypes.CDLL(os.path.realpath(path))
    except OSError as exc:
        raise ModelLoadError(f"cannot load compiled model {path}: {exc}") from exc
    try:
        abi_version = library.ml_abi_version
        abi_version.restype = ctypes.c_int
        if abi_version() != ABI_VERSION:
            raise ModelLoadError(
                f"{path} has ABI version {abi_version()}; this handler needs {ABI_VERSION}: "
                "recompile it with the model_compiler of this handler"
            )
        return CompiledModel(library=library, path=path if source is None else source)
    except AttributeError as exc:
        raise ModelLoadError(f"{path} is not a model_compiler library: {exc}") from exc
