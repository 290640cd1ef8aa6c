"""NumPy ``.npz`` archives read safely: never unpickled, every damage an InputError."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqattn.errors import InputError

DEFAULT_MAX_NPZ_BYTES = 2 << 30  # array data of one archive, uncompressed
MAX_NPZ_BYTES_ENV = "SEQATTN_MAX_NPZ_BYTES"


def max_npz_bytes() -> int:
    """The most array data (bytes, uncompressed) ``read_npz`` loads: ``SEQATTN_MAX_NPZ_BYTES`` or 2 GiB.

    Raises:
        InputError: the variable is not a positive integer.
    """
    from seqattn.readers.limits import env_positive_int

    return env_positive_int(MAX_NPZ_BYTES_ENV, DEFAULT_MAX_NPZ_BYTES)


def _declared_bytes(path: Path) -> int:
    """Bytes the arrays of an archive declare in their .npy headers, read before any array is.

    A compressed archive can hold gigabytes of zeros in a few kilobytes; the headers say how
    many values each array has, so the sum bounds what loading would allocate.
    """
    import zipfile

    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)
                total += int(np.prod(shape, dtype=object)) * dtype.itemsize
    return total


def read_npz(path: str | Path, what: str = "NPZ file") -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` archive, by name (``allow_pickle=False``).

    Raises:
        InputError: a missing file, or one that is not a readable archive of arrays: not a zip,
            empty, truncated, bad CRCs, an unknown compression method, object arrays (pickles),
            a plain ``.npy`` file, or arrays that declare more than ``max_npz_bytes()`` of data
            (checked in their headers before loading).  The message names ``what``.
    """
    import zipfile
    import zlib

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    limit = max_npz_bytes()
    try:
        declared = _declared_bytes(path) if zipfile.is_zipfile(path) else 0
        if declared > limit:
            raise InputError(f"{path}: the {what} declares {declared:,} bytes of arrays, more than the {limit:,} "
                             f"seqattn loads (set {MAX_NPZ_BYTES_ENV} to allow more)")
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("a single array (.npy), not an archive of named arrays")
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, NotImplementedError, KeyError, zlib.error) as err:
        # zipfile's own errors for damaged archives: bad CRCs, unknown compression methods, bad streams
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise InputError(f"{path}: not a readable {what} ({first})") from None
    except (AttributeError, TypeError):  # np.load gave an ndarray (a .npy file): no context manager
        raise InputError(f"{path}: not a readable {what} (a single .npy array, not an .npz archive)") from None
    except MemoryError:
        raise InputError(f"{path}: an array in the {what} declares more values than fit in memory") from None
