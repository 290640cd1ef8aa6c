"""Graph featurising: node features -> the tensor a node classifier reads; molecules -> one batched graph."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from seqattn.readers.molecules import Molecule


def normalize_rows(features) -> np.ndarray:
    """Divide each row by its sum (rows that sum to 0 stay 0), as GCN and GAT preprocess features.

    Shapes:
        features: (N, F) ndarray or scipy sparse  ->  (N, F) float32 ndarray
    """
    import scipy.sparse as sp

    dense = features.toarray() if sp.issparse(features) else np.asarray(features)
    dense = dense.astype(np.float32, copy=True)
    sums = dense.sum(axis=1, keepdims=True)
    np.divide(dense, sums, out=dense, where=sums != 0)
    return dense


def features_tensor(features, normalize: bool) -> Tensor:
    """Node features as the model reads them: sparse COO when most entries are 0, else dense.

    Shapes:
        features: (N, F) ndarray or scipy sparse  ->  (N, F) float32 tensor
    """
    import scipy.sparse as sp

    dense = normalize_rows(features) if normalize else (
        features.toarray() if sp.issparse(features) else np.asarray(features, dtype=np.float32))
    tensor = torch.from_numpy(np.ascontiguousarray(dense, dtype=np.float32))
    if tensor.numel() and (tensor != 0).float().mean() < 0.1:
        return tensor.to_sparse()
    return tensor


def batch_molecules(molecules: list[Molecule]) -> dict[str, "object"]:
    """Put molecules into one disconnected graph (the usual way to batch graphs, as PyG does).

    Shapes:
        -> x (N, ATOM_FEATURES) float32, edge_index (2, E) int64, bond_type (E,) int64,
           batch (N,) int64 molecule of each atom, y (G,) float32, n_graphs G
    """
    offsets = np.cumsum([0] + [m.x.shape[0] for m in molecules])
    return {
        "x": torch.from_numpy(np.concatenate([m.x for m in molecules])),
        "edge_index": torch.from_numpy(np.concatenate([m.edge_index + o for m, o in zip(molecules, offsets)], axis=1)),
        "bond_type": torch.from_numpy(np.concatenate([m.bond_type for m in molecules])),
        "batch": torch.from_numpy(np.repeat(np.arange(len(molecules)), np.diff(offsets))),
        "y": torch.tensor([m.y for m in molecules], dtype=torch.float32),
        "n_graphs": len(molecules),
    }
