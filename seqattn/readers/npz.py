"""NumPy ``.npz`` archives read safely: never unpickled, every damage an InputError."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seqattn.errors import InputError


def read_npz(path: str | Path, what: str = "NPZ file") -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` archive, by name (``allow_pickle=False``).

    Raises:
        InputError: a missing file, or one that is not a readable archive of arrays: not a zip,
            empty, truncated, bad CRCs, an unknown compression method, object arrays (pickles),
            a plain ``.npy`` file, or an array larger than memory.  The message names ``what``.
    """
    import zipfile
    import zlib

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
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
