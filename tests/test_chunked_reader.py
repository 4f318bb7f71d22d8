"""The chunked reader reads a file as the whole-file reader does: pyarrow's streaming parser
with the same options, every column's type decided over the whole file (also when the first
megabyte says otherwise), decimal commas found over every chunk, pandas only where pyarrow
cannot read the file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from aecore.io.chunks import open_csv_chunks
from aecore.io.reader import read_csv


def _read_both(path, chunksize):
    """The whole read, the chunked reader after its first pass, and its second pass's chunks
    (the ones a chunked export writes)."""
    whole = read_csv(path)
    chunks = open_csv_chunks(path, chunksize)
    first = list(chunks)
    assert sum(len(p) for p in first) == len(whole)
    return whole, chunks, list(chunks)


def test_types_that_change_after_the_first_megabyte_are_the_whole_files(tmp_path):
    n = 300_000  # about 7 MB: the first blocks see only whole numbers and no text
    rng = np.random.default_rng(0)
    count = rng.integers(0, 1000, n).astype(object)
    count[-3] = 2.5  # a float late in the file
    code = rng.integers(0, 9, n).astype(object)
    code[-1] = "x9"  # text late in the file
    empty_then = np.full(n, "", dtype=object)
    empty_then[-2] = "7"
    frame = pd.DataFrame({"count": count, "code": code, "late": empty_then,
                          "value": rng.normal(size=n)})
    path = tmp_path / "late_types.csv"
    frame.to_csv(path, index=False)
    whole, chunks, parts = _read_both(path, 70_000)
    assert not chunks.pandas_fallback  # pyarrow read it
    assert [len(p) for p in parts] == [70_000] * 4 + [20_000]
    joined = pd.concat(parts)
    assert list(joined.index) == list(range(n))  # rows numbered on across chunks
    pd.testing.assert_frame_equal(joined.reset_index(drop=True), whole)
    assert whole["count"].dtype == np.float64 and joined["code"].iloc[-1] == "x9"
    # 'code' was read as numbers before its text row: a pass that used it must be done again
    # ('count' too, but it is a number either way); 'value' never changed.
    assert not chunks.settle(["code"]) and chunks.settle(["value"])


def test_decimal_commas_are_judged_over_every_chunk(tmp_path):
    rows = ["amount;name;mixed"]
    rows += [f"{i},5;n{i};{i},25" for i in range(50)]
    rows += ["3,5;n50;not a number"]  # 'mixed' has text: it stays text, whole and chunked
    path = tmp_path / "european.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    whole, chunks, parts = _read_both(path, 7)
    joined = pd.concat(parts).reset_index(drop=True)
    pd.testing.assert_frame_equal(joined, whole)
    assert whole["amount"].dtype == np.float64 and whole["amount"].iloc[1] == 1.5
    assert joined["mixed"].iloc[0] == "0,25"


def test_pandas_reads_what_pyarrow_cannot_as_the_whole_read_does(tmp_path, monkeypatch):
    frame = pd.DataFrame({"a": range(40), "b": [f"t{i}" for i in range(40)]})
    path = tmp_path / "plain.csv"
    frame.to_csv(path, index=False)
    chunks = open_csv_chunks(path, 9)

    def refuse(*args, **kwargs):
        raise pa.ArrowInvalid("straddling object straddles two block boundaries")

    monkeypatch.setattr(chunks, "_first_block_types", refuse)
    joined = pd.concat(list(chunks)).reset_index(drop=True)
    assert chunks.pandas_fallback
    pd.testing.assert_frame_equal(joined, read_csv(path), check_dtype=False)


def test_pandas_goes_on_where_pyarrow_fails_part_way_and_the_pass_is_scored_again(
    tmp_path, monkeypatch
):
    frame = pd.DataFrame({"a": range(40), "b": [f"t{i % 3}" for i in range(40)]})
    path = tmp_path / "plain.csv"
    frame.to_csv(path, index=False)
    chunks = open_csv_chunks(path, 9)
    real = chunks._arrow_chunks

    def fail_after_two(types, skip, *, settled):
        for number, part in enumerate(real(types, skip, settled=settled)):
            if number == 2:
                raise pa.ArrowInvalid("straddling object straddles two block boundaries")
            yield part

    monkeypatch.setattr(chunks, "_arrow_chunks", fail_after_two)
    first = list(chunks)
    for part in first[2:]:
        chunks.observe(part)  # as score_csv observes the chunks of its first pass
    assert chunks.pandas_fallback and [len(p) for p in first] == [9, 9, 9, 9, 4]
    pd.testing.assert_frame_equal(pd.concat(first).reset_index(drop=True), read_csv(path),
                                  check_dtype=False)  # fmt: skip
    assert not chunks.settle(["b"])  # the pass that used pyarrow's chunks is scored again
    second = pd.concat(list(chunks)).reset_index(drop=True)
    pd.testing.assert_frame_equal(second, read_csv(path), check_dtype=False)
    assert chunks.settle(["b"])
