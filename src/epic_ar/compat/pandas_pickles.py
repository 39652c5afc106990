"""DataFrames pickled by any pandas version (the official annotation `.pkl` files).

The official annotations also come as pandas pickles, written by an older pandas whose
class names moved since. They are read with pandas' own name mapping
(`pandas.compat.pickle_compat`) and an allow-list of the globals that rebuild frames,
indexes and arrays from plain data: nothing a file names outside it is imported or run.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from epic_ar.errors import EpicArError
from epic_ar.fileio.messages import one_line
from epic_ar.fileio.safe_pickle import DATA_GLOBALS, RefusedGlobalError, check_build_state

# What a pickled DataFrame of the official annotations may name, old and new pandas alike.
# These rebuild frames, indexes and arrays from plain data; nothing here runs user code.
_PANDAS_GLOBALS = {
    ("pandas", "DataFrame"),
    ("pandas", "Series"),
    ("pandas", "Index"),
    ("pandas", "RangeIndex"),
    ("pandas", "StringDtype"),
    ("pandas", "CategoricalDtype"),
    ("pandas", "Categorical"),
    ("pandas.arrays", "StringArray"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.series", "Series"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas.core.internals", "BlockManager"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.internals.blocks", "new_block"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas.core.indexes.numeric", "Int64Index"),
    ("pandas.core.arrays.string_", "StringArray"),
    ("pandas.core.arrays.string_", "StringDtype"),
    ("pandas.core.arrays.string_arrow", "ArrowStringArray"),
    ("pandas.core.arrays.integer", "IntegerArray"),
    ("pandas.core.arrays.integer", "Int64Dtype"),
    ("pandas.core.arrays.categorical", "Categorical"),
    ("pandas.core.dtypes.dtypes", "CategoricalDtype"),
    ("pandas._libs.missing", "NA"),
    ("pandas._libs.missing", "NAType"),
    ("numpy.dtypes", "ObjectDType"),
    ("numpy.dtypes", "Int64DType"),
    ("numpy.dtypes", "Float64DType"),
    ("numpy.dtypes", "BoolDType"),
    ("numpy.dtypes", "StrDType"),
}


def _pandas_unpickler_base() -> type[pickle._Unpickler]:
    # pandas' own Unpickler maps names that moved between pandas versions; it is a
    # pure-Python unpickler, so every global goes through `find_class`.
    try:
        from pandas.compat.pickle_compat import Unpickler
    except ImportError:  # pragma: no cover - depends on the pandas version
        return pickle._Unpickler
    return Unpickler  # type: ignore[no-any-return]


_PandasUnpickler = _pandas_unpickler_base()


class _AnnotationUnpickler(_PandasUnpickler):  # type: ignore[misc,valid-type]
    def __init__(self, file: Any, *, source: str):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in DATA_GLOBALS:
            return DATA_GLOBALS[(module, name)]
        if (module, name) in _PANDAS_GLOBALS:
            return super().find_class(module, name)
        raise RefusedGlobalError(
            f"{self._source}: refused to load '{module}.{name}': an annotation pickle may "
            "only hold a pandas DataFrame of plain values (the official .csv always works)",
            f"{module}.{name}",
        )

    def persistent_load(self, pid: Any) -> Any:
        raise EpicArError(f"{self._source}: refers to external storage {pid!r}")

    def load_build(self) -> None:
        check_build_state(self.stack[-2], self.stack[-1], self._source)
        super().load_build()

    dispatch: ClassVar[dict[int, Any]] = dict(_PandasUnpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


def read_pandas_pickle(path: Path) -> pd.DataFrame:
    """The DataFrame pickled in `path` (by any pandas version), unpickled through the
    allow-list.

    Raises:
        RefusedGlobalError: the pickle names something outside the allow-list.
        EpicArError: the file is not a readable pickle, or holds something else.
    """
    try:
        with path.open("rb") as file:
            frame = _AnnotationUnpickler(file, source=str(path)).load()
    except EpicArError:
        raise
    except Exception as exc:  # corrupted pickles raise many different types
        raise EpicArError(f"{path}: not a readable pandas pickle ({one_line(exc)})") from exc
    if not isinstance(frame, pd.DataFrame):
        raise EpicArError(f"{path}: holds a {type(frame).__name__}, expected a pandas DataFrame")
    return frame
