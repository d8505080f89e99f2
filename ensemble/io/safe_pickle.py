"""Untrusted pickles: plain containers, strings, numbers and numpy arrays, and nothing else.

A pickle names the callables that rebuild its objects, and `pickle.load` imports and calls
whatever it names (`os.system` included). `load_pickle` admits only the few that numpy arrays
and Python's own containers need, and refuses any other before it is imported or called.
"""

from __future__ import annotations

import builtins
import pickle
from pathlib import Path

import numpy as np

from ensemble.errors import InputError
from ensemble.io.file_kind import require_regular_file

_BUILTINS = ("set", "frozenset", "complex")


def _bytearray(*args: object) -> bytearray:
    """`bytearray` of pickled bytes (numpy's protocol 0-2 arrays use it); never of a size alone,
    which would fill that many bytes while loading."""
    if args and isinstance(args[0], int):
        raise pickle.UnpicklingError(f"bytearray({args[0]:,}) asked for by a size alone")
    return bytearray(*args)


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """`_codecs.encode` as protocol 0-2 pickles use it for bytes: latin-1 text only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is admitted for latin-1 text only")
    return text.encode("latin-1")


def _admitted() -> dict[tuple[str, str], object]:
    """(module, name) -> the object a pickle of data may ask for (numpy 1.x and 2.x spellings)."""
    array = np.zeros(1)
    reconstruct = array.__reduce__()[0]  # ndarray, protocols 0-4
    from_buffer = array.__reduce_ex__(5)[0]  # ndarray, protocol 5
    scalar = np.float64(0).__reduce__()[0]  # numpy scalars
    table: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_bytes,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{core}.multiarray", "scalar")] = scalar
        table[(f"{core}.numeric", "_frombuffer")] = from_buffer
    for module in ("builtins", "__builtin__"):  # __builtin__: protocols 0-2
        for name in _BUILTINS:
            table[(module, name)] = getattr(builtins, name)
        table[(module, "bytearray")] = _bytearray
    return table


class _Refused(Exception):
    """A pickle asked for a global outside the admitted ones."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.global_name = f"{module}.{name}"


class _DataUnpickler(pickle.Unpickler):
    """An unpickler whose every global lookup goes through the admitted table."""

    _table = _admitted()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._table[(module, name)]
        except KeyError:
            raise _Refused(module, name) from None


def _check_sizes(loaded: object, file_size: int) -> None:
    """Refuse an array larger than the file: a pickle is not compressed, so its data cannot be;
    a few bytes calling numpy.ndarray(shape) could otherwise ask for any size."""
    stack = [loaded]
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray) and item.nbytes > file_size:
            raise pickle.UnpicklingError(
                f"an array of {item.nbytes:,} bytes in a file of {file_size:,}: not data it holds"
            )
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)


def load_pickle(path: str | Path) -> object:
    """The object pickled in `path`, when it is made of plain containers, strings, numbers and
    numpy arrays; InputError naming the file (and the refused global) otherwise."""
    path = Path(path)
    require_regular_file(path)
    try:
        with open(path, "rb") as handle:
            loaded = _DataUnpickler(handle).load()
        _check_sizes(loaded, path.stat().st_size)
        return loaded
    except _Refused as refused:
        raise InputError(
            path,
            f"refused to load: the pickle asks for {refused.global_name}, which is not a plain "
            "container, string, number or numpy array (a pickle can run code; only data is "
            "loaded); save the predictions as an .npz or a dict of lists and arrays",
        ) from None
    except OSError as error:
        raise InputError(path, f"cannot read the file ({error.strerror or error})") from None
    except Exception as error:  # untrusted bytes: any failure of the stream is a bad file
        raise InputError(path, f"not a readable pickle ({type(error).__name__}: {error})") from None
