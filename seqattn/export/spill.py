"""Arrays that grow row by row on disk, so a long clip's attention is exported in bounded memory.

A 15-minute clip at a 10 ms hop and stride 2 is 45,000 attention steps; its band weights over
4 layers x 4 heads x 17 offsets are 49 MB of float32, and a 3-hour recording 600 MB.  The
speech command appends each chunk's weights here as the model produces them, and the exporters
read them back in slices of rows (``array[layer, head, a:b]``, ``rows[a:b]``), so memory stays
at one chunk whatever the length.  Plain files and ``np.fromfile``, not ``np.memmap``: a mapped
file's touched pages count in the process's resident memory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


class SpillRows:
    """A (rows, width) float32 array appended to a file one block of rows at a time."""

    def __init__(self, path: Path, width: int):
        self.path, self.width, self.rows = Path(path), int(width), 0
        self._handle = open(self.path, "w+b")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.width)

    def append(self, block) -> None:
        """Shapes: block (n, width)."""
        block = np.ascontiguousarray(block, dtype="<f4")
        if block.ndim != 2 or block.shape[1] != self.width:
            raise ValueError(f"expected (n, {self.width}) rows, got {block.shape}")
        self._handle.seek(0, os.SEEK_END)
        self._handle.write(block.tobytes())
        self.rows += len(block)

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("SpillRows reads contiguous row slices only (rows[a:b])")
        start, stop, _ = index.indices(self.rows)
        count = max(0, stop - start) * self.width
        self._handle.flush()
        self._handle.seek(start * self.width * 4)
        return np.fromfile(self._handle, dtype="<f4", count=count).reshape(-1, self.width)

    def close(self) -> None:
        self._handle.close()


class SpillArray:
    """An (L, H, N, K) float32 array whose N grows; one ``SpillRows`` per layer and head."""

    def __init__(self, directory: Path, n_layers: int, n_heads: int, width: int):
        self.parts = [[SpillRows(Path(directory) / f"l{layer}h{head}.f32", width) for head in range(n_heads)]
                      for layer in range(n_layers)]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.parts), len(self.parts[0]), self.parts[0][0].rows, self.parts[0][0].width)

    def append(self, per_layer) -> None:
        """Append the next rows of every layer and head. Shapes: per_layer L x (H, n, K)."""
        for layer, weights in enumerate(per_layer):
            if hasattr(weights, "detach"):
                weights = weights.detach().float().cpu().numpy()
            for head, part in enumerate(self.parts[layer]):
                part.append(weights[head])

    def __getitem__(self, index) -> np.ndarray:
        layer, head, rows = index
        return self.parts[layer][head][rows]

    def close(self) -> None:
        for row in self.parts:
            for part in row:
                part.close()


class SpillDirectory:
    """A temporary directory for spilled arrays, removed (with its files) on ``close``."""

    def __init__(self, prefix: str = "seqattn-attention-"):
        self._tmp = tempfile.TemporaryDirectory(prefix=prefix)
        self.path = Path(self._tmp.name)
        self._arrays: list = []

    def rows(self, name: str, width: int) -> SpillRows:
        array = SpillRows(self.path / f"{name}.f32", width)
        self._arrays.append(array)
        return array

    def array(self, name: str, n_layers: int, n_heads: int, width: int) -> SpillArray:
        directory = self.path / name
        directory.mkdir()
        array = SpillArray(directory, n_layers, n_heads, width)
        self._arrays.append(array)
        return array

    def close(self) -> None:
        for array in self._arrays:
            array.close()
        self._tmp.cleanup()

    def __enter__(self) -> "SpillDirectory":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
