"""Reading files larger than one parse block: the fast path gives the same frame as a careful
read, and the frame behaves like any other (its columns can be edited in place)."""

import numpy as np
import pandas as pd

from aecore.io import reader


def _csv(rows: list[str], header: str = "count,value,name") -> bytes:
    return (header + "\n" + "\n".join(rows) + "\n").encode()


def test_a_column_that_changes_type_after_the_first_block_is_read_faithfully():
    # 150,000 rows (~2 MB): the first block shows whole numbers only; a later row holds a
    # decimal in "count" and text in "value", so the types guessed from the first block
    # cannot hold; the reader must still return every value as written.
    n = 150_000
    rows = [f"{i},{i % 7},row{i % 3}" for i in range(n)]
    rows[140_000] = "2.5,seven,row1"
    frame = reader.read_csv(_csv(rows))
    assert len(frame) == n
    assert frame["count"].dtype == np.float64
    assert frame["count"].iloc[140_000] == 2.5
    assert frame["count"].iloc[139_999] == 139_999
    assert frame["value"].iloc[140_000] == "seven"
    assert frame["value"].iloc[10] == "3"
    expected = pd.read_csv(pd.io.common.BytesIO(_csv(rows)))
    pd.testing.assert_series_equal(frame["count"], expected["count"])


def test_a_large_numeric_file_reads_exactly_and_can_be_edited_in_place():
    rng = np.random.default_rng(0)
    values = np.round(rng.normal(size=(200_000, 5)), 4)  # ~5 MB: several parse blocks
    text = "a,b,c,d,e\n" + "\n".join(",".join(map(repr, row)) for row in values.tolist())
    frame = reader.read_csv(text.encode())
    np.testing.assert_array_equal(frame.to_numpy(), values)
    frame.loc[frame.index[:3], "a"] = 0.0  # raises if the reader handed out read-only memory
    frame.iloc[5, 1] = 1.0
    assert frame["a"].iloc[:3].tolist() == [0.0, 0.0, 0.0]
    assert frame["b"].iloc[5] == 1.0
