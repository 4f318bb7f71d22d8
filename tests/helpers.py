"""Small seeded frames shared by the tests."""

import numpy as np
import pandas as pd


def numeric_frame(n_rows=300, n_features=6, seed=0) -> pd.DataFrame:
    """Correlated numeric data: 2 latent factors mixed into ``n_features`` columns, plus noise."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_rows, 2))
    mixing = rng.normal(size=(2, n_features))
    values = factors @ mixing + 0.1 * rng.normal(size=(n_rows, n_features))
    return pd.DataFrame(values, columns=[f"f{i}" for i in range(n_features)])


def mixed_frame(n_rows=300, seed=0) -> pd.DataFrame:
    """Numeric columns that depend on a categorical protocol column, plus a label."""
    rng = np.random.default_rng(seed)
    protocol = rng.choice(["tcp", "udp", "icmp"], size=n_rows, p=[0.6, 0.3, 0.1])
    base = {"tcp": 5.0, "udp": 2.0, "icmp": 0.5}
    level = np.array([base[p] for p in protocol])
    frame = pd.DataFrame(
        {
            "bytes": level * 100 + rng.normal(scale=5, size=n_rows),
            "packets": level * 10 + rng.normal(scale=1, size=n_rows),
            "duration": level + rng.normal(scale=0.1, size=n_rows),
            "protocol": protocol,
        }
    )
    return frame
