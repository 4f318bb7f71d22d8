"""Parquet input (issue 17, item 3): read whole (upload, ``train``) and in row batches
(``score``), by the same rules and with the same results as the same table in a CSV file."""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import aecore
from aecore.errors import AecoreError
from aecore.io import inference, reader
from aecore.io.chunks import open_csv_chunks
from aecore.io.parquet import ChunkedParquet
from tests.pages_support import no_exception, open_app
from tests.test_cli import error_lines, run_cli
from ui import state


def _flows(n=400, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "flow_id": np.arange(n) + 1000,
        "src_bytes": rng.lognormal(6, 1, n).round(1),
        "dst_bytes": rng.lognormal(5, 1, n).round(1),
        "duration": rng.exponential(2.0, n).round(3),
        "protocol": rng.choice(["tcp", "udp", "icmp"], n),
    })  # fmt: skip
    frame.loc[::50, "src_bytes"] *= 40  # a few loud rows
    return frame


def _parquet_bytes(frame: pd.DataFrame, **kwargs) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, **kwargs)
    return sink.getvalue()


def test_a_parquet_file_reads_as_the_same_table_from_csv():
    frame = _flows()
    from_parquet = reader.read_csv(_parquet_bytes(frame))
    from_csv = reader.read_csv(frame.to_csv(index=False).encode())
    pd.testing.assert_frame_equal(from_parquet, from_csv, check_dtype=False)
    # The same roles are inferred: the id, the numbers, the categorical column.
    assert inference.infer_roles(from_parquet) == inference.infer_roles(from_csv)


def test_a_damaged_or_nested_parquet_file_gets_one_clear_message():
    data = _parquet_bytes(_flows())
    with pytest.raises(AecoreError, match="starts like a Parquet file but cannot be read"):
        reader.read_csv(data[: len(data) // 2])
    nested = pa.table({"a": [1, 2, 3], "tags": [[1], [2, 3], []]})
    sink = io.BytesIO()
    pq.write_table(nested, sink)
    with pytest.raises(AecoreError, match="nested or binary columns.*tags"):
        reader.read_csv(sink.getvalue())
    empty = io.BytesIO()
    pq.write_table(pa.table({"a": pa.array([], pa.float64())}), empty)
    with pytest.raises(AecoreError, match="no data rows"):
        reader.read_csv(empty.getvalue())


def test_parquet_batches_give_the_whole_file_row_for_row(tmp_path):
    frame = _flows(1000)
    path = tmp_path / "flows.parquet"
    path.write_bytes(_parquet_bytes(frame, row_group_size=300))
    chunks = open_csv_chunks(path, chunksize=128)
    assert isinstance(chunks, ChunkedParquet) and chunks.names == list(frame.columns)
    parts = list(chunks)
    assert [len(p) for p in parts[:-1]] == [128] * (len(parts) - 1)
    joined = pd.concat(parts)
    pd.testing.assert_frame_equal(joined, reader.read_csv(path), check_dtype=False)
    assert joined.index.tolist() == list(range(1000))  # rows numbered across chunks


def test_train_and_score_a_parquet_file_from_the_command_line(tmp_path):
    frame = _flows(400)
    (tmp_path / "flows.parquet").write_bytes(_parquet_bytes(frame, row_group_size=150))
    frame.to_csv(tmp_path / "flows.csv", index=False)
    trained = run_cli(
        "train", "flows.parquet", "--name", "flows", "--epochs", "3", "--seed", "1",
        "--models-dir", "models", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "Trained 'flows' on 400 rows" in trained.stdout
    outputs = {}
    for name in ("flows.parquet", "flows.csv"):
        scored = run_cli(
            "score", name, "--model", "flows", "--output", f"{name}.out.csv", "--all",
            "--chunksize", "128", "--models-dir", "models", cwd=tmp_path,
        )  # fmt: skip
        assert scored.returncode == 0, scored.stderr
        outputs[name] = pd.read_csv(tmp_path / f"{name}.out.csv")
    # Scored by the same model, the Parquet file and its CSV twin give the same export.
    pd.testing.assert_frame_equal(outputs["flows.parquet"], outputs["flows.csv"])
    detector = aecore.load("flows", models_dir=tmp_path / "models")
    assert detector.roles_.ids == ["flow_id"]
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(_parquet_bytes(frame)[:300])
    failed = run_cli(
        "score", "broken.parquet", "--model", "flows", "--output", "x.csv", "--models-dir",
        "models", cwd=tmp_path,
    )  # fmt: skip
    assert failed.returncode != 0
    lines = error_lines(failed.stderr)
    assert len(lines) == 1 and "broken.parquet" in lines[0] and "Parquet" in lines[0]


def test_the_dashboard_takes_a_parquet_upload(models_dir):
    at = open_app("data")
    data = _parquet_bytes(_flows(300))
    at.file_uploader(key="data_upload").set_value(
        ("flows.parquet", data, "application/octet-stream")
    ).run()
    no_exception(at)
    assert not at.error
    assert at.session_state[state.DATA_NAME] == "flows.parquet"
    assert len(at.session_state[state.DATA_FRAME]) == 300
