"""Scoring many files on Dask with one bundle (issue 17): the same scores as one machine, row
for row, over CSV and Parquet parts; per-file failures; resume; the bundle travels as files."""

import json

import numpy as np
import pandas as pd
import pytest

from aecore import AnomalyDetector, store
from aecore.errors import AecoreError
from aecore.io import reader
from aecore.workflows import distributed, sampling
from tests.dask_support import LoudShutdown
from tests.test_cli import error_lines, run_cli
from tests.test_parquet import _flows, _parquet_bytes


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A saved model and a folder of parts: two Parquet files (several row groups), one CSV."""
    root = tmp_path_factory.mktemp("dask")
    frame = _flows(1600, seed=3)
    detector = AnomalyDetector(epochs=3, random_state=0).fit(frame.iloc[:800])
    store.save(detector, "flows", models_dir=root / "models")
    data = root / "data"
    data.mkdir()
    (data / "a.parquet").write_bytes(_parquet_bytes(frame.iloc[800:1100], row_group_size=70))
    (data / "b.parquet").write_bytes(_parquet_bytes(frame.iloc[1100:1400], row_group_size=300))
    frame.iloc[1400:].to_csv(data / "c.csv", index=False)
    return root


@pytest.fixture(scope="module")
def client():
    """A small in-process cluster (one worker, threads), closed after the module."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                           dashboard_address=None)  # fmt: skip
    with Client(cluster) as connected:
        yield connected
    cluster.close()


def _parts(out):
    import pyarrow.parquet as pq

    files = sorted((out / distributed.PARTS).rglob("part-*.parquet"))  # pieces are nested
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_dask_scores_equal_single_machine_scores_row_for_row(folder, client, tmp_path):
    out = tmp_path / "out"
    summary = distributed.score_on_dask(
        [folder / "data"], model="flows", output=out, models_dir=folder / "models",
        client=client, all_rows=True, chunksize=64, top_n=10,
    )  # fmt: skip
    assert summary["files"] == 3 and not summary["failures"]
    assert summary["rows_scored"] == 800
    detector = AnomalyDetector.load("flows", models_dir=folder / "models")
    parts = _parts(out)
    assert len(parts) == 800
    flagged = 0
    for name in ("a.parquet", "b.parquet", "c.csv"):
        path = folder / "data" / name
        whole = reader.read_csv(path)
        expected = detector.decision_function(whole)
        got = parts[parts["source_file"] == str(path.resolve())]
        # row is the single-machine export's source_row: the header is row 1.
        np.testing.assert_allclose(
            got["reconstruction_error"].to_numpy(), expected[got["row"].to_numpy() - 2],
            rtol=1e-6,
        )  # fmt: skip
        assert sorted(got["row"]) == list(range(2, len(whole) + 2))
        flagged += int(detector.predict(whole).sum())
    assert summary["rows_flagged"] == flagged
    top = pd.read_csv(out / distributed.TOP, encoding="utf-8-sig")
    assert len(top) == 10 and top["rank"].tolist() == list(range(1, 11))
    assert top["reconstruction_error"].is_monotonic_decreasing
    assert top["reconstruction_error"].iloc[0] == pytest.approx(parts["reconstruction_error"].max())
    saved = json.loads((out / distributed.SUMMARY).read_text())
    assert [f["rows"] for f in saved["per_file"]] == [300, 300, 200]
    # a.parquet's row groups of 70 in pieces of max(64, 600 Parquet rows / (4 x 2 threads)) = 75
    # rows or more: 140, 140, 20; b.parquet is one row group, c.csv one task.
    assert [f["pieces"] for f in saved["per_file"]] == [3, 1, 1]


def test_row_groups_are_grouped_into_pieces_of_at_least_the_target_rows():
    pieces = distributed.pieces.split_row_groups([50] * 7, 120)
    assert [p["groups"] for p in pieces] == [[0, 3], [3, 6], [6, 7]]
    assert [p["offset"] for p in pieces] == [0, 150, 300]  # the rows before each piece
    assert [p["rows"] for p in pieces] == [150, 150, 50]
    assert {p["pieces"] for p in pieces} == {3} and [p["number"] for p in pieces] == [0, 1, 2]
    assert len(distributed.pieces.split_row_groups([1000], 10)) == 1  # one row group: one piece
    assert [p["rows"] for p in distributed.pieces.split_row_groups([500, 20, 20], 100)] == [
        500, 40]  # a row group is never cut


def _split_file(folder, tmp_path, rows=400, row_group_size=50):
    path = tmp_path / "split.parquet"
    path.write_bytes(_parquet_bytes(_flows(rows, seed=11), row_group_size=row_group_size))
    return path


def test_a_parquet_file_in_pieces_gives_the_single_machine_export_row_for_row(
    folder, client, tmp_path
):
    from aecore.workflows.chunked import score_csv

    path = _split_file(folder, tmp_path)
    calls = []
    summary = distributed.score_on_dask(
        [path], model="flows", output=tmp_path / "out", models_dir=folder / "models",
        client=client, all_rows=True, chunksize=64, top_n=7,
        progress=lambda result, done, total: calls.append((result, done, total)),
    )  # fmt: skip
    # 8 row groups of 50 in pieces of max(64, 400 / (4 x 2 threads)) rows: 4 tasks of 100.
    assert [(c[0]["piece"], c[0]["pieces"], c[2]) for c in calls] == [
        (c[0]["piece"], 4, 4) for c in calls]  # fmt: skip
    assert sorted(c[0]["piece"] for c in calls) == [0, 1, 2, 3]
    assert [c[1] for c in calls] == [1, 2, 3, 4]
    assert len(summary["per_file"]) == 1 and summary["rows_scored"] == 400
    assert summary["per_file"][0]["pieces"] == 4 and summary["per_file"][0]["rows"] == 400
    parts = _parts(tmp_path / "out").sort_values("row").reset_index(drop=True)
    detector = AnomalyDetector.load("flows", models_dir=folder / "models")
    score_csv(path, detector, tmp_path / "one.csv", model_name="flows", all_rows=True,
              chunksize=64)  # fmt: skip
    one = pd.read_csv(tmp_path / "one.csv", encoding="utf-8-sig").sort_values("source_row")
    assert parts["row"].tolist() == one["source_row"].tolist() == list(range(2, 402))
    np.testing.assert_allclose(parts["reconstruction_error"], one["reconstruction_error"],
                               rtol=1e-6)  # fmt: skip
    for column in ("flow_id", "flag", "top1_feature", "top2_feature", "top3_feature"):
        assert parts[column].astype(str).tolist() == one[column].astype(str).tolist(), column
    np.testing.assert_allclose(parts["top1_share"], one["top1_share"], rtol=1e-5)
    assert summary["rows_flagged"] == int(one["flag"].sum())
    top = pd.read_csv(tmp_path / "out" / distributed.TOP, encoding="utf-8-sig")
    best = one.sort_values("rank").head(7)
    assert top["row"].tolist() == best["source_row"].tolist()  # the 7 highest over all pieces


def test_resume_skips_the_finished_pieces_and_a_file_split_in_pieces_fails_once(
    folder, client, tmp_path
):
    path = _split_file(folder, tmp_path)
    out = tmp_path / "out"
    run = dict(model="flows", output=out, models_dir=folder / "models", client=client,
               chunksize=64, resume=True)  # fmt: skip
    first = distributed.score_on_dask([path], **run)
    pieces = sorted((out / distributed.PARTS).glob("split-*/piece-*"))
    assert len(pieces) == 4 and first["per_file"][0]["pieces"] == 4
    import shutil

    shutil.rmtree(pieces[2])  # as if the run had stopped before this piece was done
    calls = []
    again = distributed.score_on_dask([path], progress=lambda r, d, t: calls.append(r), **run)
    assert sorted((c["piece"], bool(c.get("resumed"))) for c in calls) == [
        (0, True), (1, True), (2, False), (3, True)]  # fmt: skip
    assert again["rows_scored"] == first["rows_scored"] == 400
    assert again["rows_flagged"] == first["rows_flagged"]
    assert again["per_file"][0]["resumed"] is False and len(again["per_file"]) == 1
    # The plan is the saved one, whatever the cluster or chunk size is now.
    bigger = distributed.score_on_dask([path], **{**run, "chunksize": 10_000})
    assert bigger["per_file"][0]["pieces"] == 4 and bigger["per_file"][0]["resumed"]
    # Rewritten with other row groups after a piece was done: refused, naming the folder.
    path.write_bytes(_parquet_bytes(_flows(400, seed=11), row_group_size=40))
    changed = distributed.score_on_dask([path], **run)
    [failure] = changed["failures"]
    assert "split.parquet: it changed since some of its pieces were scored" in failure["reason"]
    # A failure in every piece of a file is reported once.
    lacks = tmp_path / "lacks.parquet"
    lacks.write_bytes(_parquet_bytes(_flows(400, seed=2).drop(columns="dst_bytes"),
                                     row_group_size=50))  # fmt: skip
    calls = []
    failed = distributed.score_on_dask([lacks], **{**run, "output": tmp_path / "out2"},
                                       progress=lambda r, d, t: calls.append(r))  # fmt: skip
    assert len(calls) == 4 and all("dst_bytes" in c["failed"] for c in calls)
    assert len(failed["failures"]) == 1 and failed["per_file"] == []


def test_an_output_written_before_files_were_split_resumes_whole_files(folder, client, tmp_path):
    """A file done in one task (``_DONE.json`` in its folder, as every file was before pieces)
    is skipped whole when a later run would split it."""
    path = _split_file(folder, tmp_path)
    run = dict(model="flows", output=tmp_path / "out", models_dir=folder / "models",
               client=client)  # fmt: skip
    whole = distributed.score_on_dask([path], chunksize=1000, **run)  # 1,000 > 400 rows: 1 task
    assert whole["per_file"][0]["pieces"] == 1
    folder_of_file = tmp_path / "out" / distributed.PARTS / distributed.part_folder(path)
    assert (folder_of_file / distributed.DONE).is_file()
    again = distributed.score_on_dask([path], chunksize=64, resume=True, **run)
    assert again["per_file"][0] == {**whole["per_file"][0], "resumed": True}


def test_a_failing_file_is_reported_while_the_others_are_scored_and_resume_skips_them(
    folder, client, tmp_path
):
    data = tmp_path / "data"
    data.mkdir()
    good = _flows(300, seed=5)
    good.to_csv(data / "good.csv", index=False)
    good.drop(columns="dst_bytes").to_csv(data / "lacks.csv", index=False)
    (data / "broken.parquet").write_bytes(_parquet_bytes(good)[:200])
    out = tmp_path / "out"
    summary = distributed.score_on_dask(
        [data / "*.csv", data / "*.parquet"], model="flows", output=out,
        models_dir=folder / "models", client=client,
    )  # fmt: skip
    reasons = {f["file"].rsplit("/", 1)[-1]: f["reason"] for f in summary["failures"]}
    assert set(reasons) == {"lacks.csv", "broken.parquet"}
    assert "dst_bytes" in reasons["lacks.csv"] and "lacks.csv" in reasons["lacks.csv"]
    assert "Parquet" in reasons["broken.parquet"]
    assert summary["rows_scored"] == 300  # the good file is scored all the same
    with pytest.raises(AecoreError, match="--resume"):
        distributed.score_on_dask([data], model="flows", output=out,
                                  models_dir=folder / "models", client=client)  # fmt: skip
    good.to_csv(data / "lacks.csv", index=False)  # fixed
    (data / "broken.parquet").unlink()
    again = distributed.score_on_dask(
        [data], model="flows", output=out, models_dir=folder / "models", client=client,
        resume=True,
    )  # fmt: skip
    assert not again["failures"] and again["rows_scored"] == 600
    resumed = {f["file"].rsplit("/", 1)[-1]: f["resumed"] for f in again["per_file"]}
    assert resumed == {"good.csv": True, "lacks.csv": False}


def test_the_bundle_travels_as_its_files_and_loads_in_safe_mode(folder, tmp_path):
    payload = distributed.bundle_payload("flows", models_dir=folder / "models")
    assert set(payload["files"]) == {store.META_FILE, store.MODEL_FILE}
    assert all(isinstance(v, bytes) for v in payload["files"].values())
    detector = distributed.worker_detector(payload)
    assert detector is distributed.worker_detector(payload)  # loaded once per process
    frame = _flows(50, seed=9)
    expected = AnomalyDetector.load("flows", models_dir=folder / "models").decision_function(frame)
    np.testing.assert_allclose(detector.decision_function(frame), expected, rtol=1e-6)


def test_paths_that_name_no_file_are_refused_before_any_cluster_starts(tmp_path):
    with pytest.raises(AecoreError, match="No file matches"):
        distributed.expand_inputs([tmp_path / "*.parquet"])
    with pytest.raises(AecoreError, match="holds no CSV or Parquet files"):
        distributed.expand_inputs([tmp_path])
    with pytest.raises(AecoreError, match="No such file or folder"):
        distributed.expand_inputs([tmp_path / "missing.csv"])


def test_the_command_line_scores_a_folder_on_a_local_cluster_and_exits_2_on_a_failure(folder):
    data = folder / "data"
    (data / "zz_lacks.csv").write_text("flow_id,src_bytes\n1,2\n", encoding="utf-8")
    try:
        result = run_cli(
            "score", str(data), "--model", "flows", "--engine", "dask", "--workers", "1",
            "--output", str(folder / "cli_out"), "--models-dir", str(folder / "models"),
            cwd=folder,
        )  # fmt: skip
    finally:
        (data / "zz_lacks.csv").unlink()
    assert result.returncode == 2
    assert "Dask dashboard: http" in result.stderr
    assert "3/4" in result.stderr or "4/4" in result.stderr
    assert "Failed: zz_lacks.csv:" in result.stderr and "Traceback" not in result.stderr
    assert "Scored 800 rows in 3 of 4 files" in result.stdout
    several = run_cli("score", "a.csv", "b.csv", "--model", "flows", "--output", "x.csv",
                      cwd=folder)  # fmt: skip
    assert several.returncode == 2
    assert error_lines(several.stderr) == [
        "error: 2 inputs given: one file is scored on this machine; score several files, "
        "folders or globs with --engine dask."
    ]


def test_closing_a_local_cluster_keeps_dask_shutdown_tracebacks_off_the_terminal(capfd):
    client, close = distributed.connect(workers=1)
    client.register_plugin(LoudShutdown(), name="loud-shutdown")
    capfd.readouterr()
    close()
    err = capfd.readouterr().err
    assert "simulated heartbeat" not in err and "Traceback" not in err


def test_the_dashboard_address_printed_serves_the_dask_dashboard():
    """The address ``score --engine dask`` prints opens Dask's dashboard, not a page asking
    for bokeh (a requirement of ``dask[diagnostics]``)."""
    import urllib.request

    client, close = distributed.connect(workers=1)
    try:
        with urllib.request.urlopen(client.dashboard_link, timeout=60) as response:
            page = response.read().decode("utf-8", "replace")
    finally:
        close()
    assert client.dashboard_link.startswith("http://127.0.0.1:")
    assert "Dask Diagnostic UI" in page and "needs bokeh" not in page


def test_a_worker_given_two_cores_scores_two_batches_side_by_side(folder):
    """A local cluster of one worker on two cores gives it both (``score_on_dask``'s
    ``threads``): one thread an op, and two batches at once, as one process scores."""
    from aecore.model import scoring

    payload = distributed.bundle_payload("flows", models_dir=folder / "models")
    client, close = distributed.connect(workers=1)
    try:
        client.run(distributed.worker_detector, payload, threads=2)
        [threads] = client.run(scoring.scoring_threads).values()
        [intra] = client.run(_intra_op_threads).values()
    finally:
        close()
    assert (threads, intra) == (2, 1)


def test_a_worker_of_a_real_cluster_scores_with_the_threads_it_was_given(folder):
    """``dask worker --nthreads 1`` (here a process cluster started as one would be, without
    the local cluster's sizing): loading the bundle in a task limits the worker to its one
    thread, not the machine's cores."""
    from distributed import Client, LocalCluster

    from aecore.model import scoring

    payload = distributed.bundle_payload("flows", models_dir=folder / "models")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        client.submit(distributed.worker_detector, payload, pure=False).result()
        threads = client.submit(scoring.scoring_threads, pure=False).result()
        [intra] = client.run(_intra_op_threads).values()
    assert (threads, intra) == (1, 1)


def _intra_op_threads():
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads()


def test_a_sample_is_drawn_uniformly_over_the_files(folder, client):
    sample, info = sampling.sample_rows([folder / "data"], 400, seed=1, client=client)
    assert len(sample) == 400 and info["sample_rows"] == 400
    assert info["rows_available"] == 800 and len(info["files"]) == 3
    # Every row is one of the files' rows, none twice, and each file gives about its share.
    assert not sample.duplicated().any()
    ids = sample["flow_id"].to_numpy()
    shares = [np.mean((ids >= lo) & (ids < hi)) for lo, hi in
              ((1800, 2100), (2100, 2400), (2400, 2600))]  # fmt: skip
    assert shares == pytest.approx([0.375, 0.375, 0.25], abs=0.08)
    same, _ = sampling.sample_rows([folder / "data"], 400, seed=1, workers=0)
    pd.testing.assert_frame_equal(sample, same)  # the same draw in this process
    everything, info = sampling.sample_rows([folder / "data"], 10_000, client=client)
    assert len(everything) == 800 and info["sample_rows"] == 800


def test_training_on_a_sample_records_its_size_and_files(folder):
    result = run_cli(
        "train", str(folder / "data"), "--sample", "300", "--engine", "dask", "--workers", "1",
        "--name", "sampled", "--epochs", "2", "--models-dir", str(folder / "models"),
        cwd=folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Sampled 300 of 800 rows from 3 files on Dask." in result.stderr
    assert "Trained 'sampled' on 300 rows" in result.stdout
    meta = store.read_meta("sampled", models_dir=folder / "models")
    assert meta["training_data"]["sample_rows"] == 300
    assert meta["training_data"]["rows_available"] == 800
    assert [p.rsplit("/", 1)[-1] for p in meta["training_data"]["files"]] == [
        "a.parquet", "b.parquet", "c.csv"
    ]
    several = run_cli("train", "a.csv", "b.csv", "--name", "x", cwd=folder)
    assert several.returncode == 2 and "--sample N" in several.stderr


def test_review_marks_travel_with_the_dask_parts(folder, client, tmp_path):
    from aecore.workflows.review import ReviewBook

    models = tmp_path / "models"
    for name in ("model.keras", "meta.json"):
        (models / "flows").mkdir(parents=True, exist_ok=True)
        (models / "flows" / name).write_bytes((folder / "models" / "flows" / name).read_bytes())
    path = folder / "data" / "c.csv"
    book = ReviewBook(reader.read_csv(path), models_dir=models)
    book.mark(5, "anomaly", "seen on the dashboard")
    book.mark(150, "normal")
    split = folder / "data" / "a.parquet"  # in 5 pieces (row groups of 70) below
    ReviewBook(reader.read_csv(split), models_dir=models).mark(200, "unsure", "third piece")
    # (the same columns, so the same data set: its marks are matched by row number and hash)
    out = tmp_path / "out"
    summary = distributed.score_on_dask([path, split], model="flows", output=out,
                                        models_dir=models, client=client, all_rows=True,
                                        chunksize=64)  # fmt: skip
    assert [f["pieces"] for f in summary["per_file"]] == [1, 5]
    parts = _parts(out)
    csv = parts[parts["source_file"] == str(path.resolve())].set_index("row")
    assert csv.loc[7, "review_status"] == "anomaly"
    assert csv.loc[7, "review_note"] == "seen on the dashboard"
    assert csv.loc[152, "review_status"] == "normal" and csv.loc[8, "review_status"] == ""
    pieces = parts[parts["source_file"] == str(split.resolve())].set_index("row")
    assert pieces.loc[202, "review_note"] == "third piece"  # row 202 is in rows 142-211
    assert (pieces["review_status"] != "").sum() == 1


def test_the_command_line_scores_on_an_existing_cluster_given_its_scheduler(folder):
    """``--scheduler ADDRESS``: the CLI (another process) connects to a running cluster, here
    a scheduler and one worker in this test's process over TCP, and leaves it running."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address=None) as cluster:  # fmt: skip
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        result = run_cli(
            "score", str(folder / "data"), "--model", "flows", "--engine", "dask",
            "--scheduler", cluster.scheduler_address, "--output", str(folder / "sched_out"),
            "--models-dir", str(folder / "models"), cwd=folder,
        )  # fmt: skip
        with Client(cluster) as still:  # the cluster outlives the command
            assert len(still.scheduler_info()["workers"]) == 1
    assert result.returncode == 0, result.stderr
    assert "Scored 800 rows in 3 of 3 files" in result.stdout
    summary = json.loads((folder / "sched_out" / distributed.SUMMARY).read_text())
    assert summary["rows_scored"] == 800 and not summary["failures"]
