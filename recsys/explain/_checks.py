"""Argument checks shared by the explanation modules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_user_indices(
    users: np.ndarray | Sequence[int], n_users: int, *, why: str = ""
) -> np.ndarray:
    """``users`` as a 1-D int64 array of indices in ``[0, n_users)``, or a ValueError.

    ``why`` is added to the message about indices out of range.
    """
    users = np.asarray(users)
    if users.ndim != 1 or not (users.size == 0 or np.issubdtype(users.dtype, np.integer)):
        raise ValueError(
            f"users: expected a 1-D array of user indices, got dtype {users.dtype} and shape "
            f"{users.shape}"
        )
    users = users.astype(np.int64)
    bad = users[(users < 0) | (users >= n_users)]
    if bad.size:
        raise ValueError(
            f"users: expected indices in [0, {n_users}){why}, got {bad[:5].tolist()}"
        )
    return users
