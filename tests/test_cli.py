"""``python -m aecore``: end to end in a subprocess (few: each pays TensorFlow's import), the
rest in-process through ``aecore.cli.main``."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import aecore
from aecore import cli
from aecore.datasets import gaussian

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AECORE_MODELS_DIR": str(cwd / "unused")}
    return subprocess.run(
        [sys.executable, "-m", "aecore", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A sample file, and a model trained on it by the CLI (the train step of the end-to-end)."""
    folder = tmp_path_factory.mktemp("cli")
    gaussian(seed=0, n_normal=300, n_anomalies=10).to_csv(folder / "sample.csv", index=False)
    result = run_cli(
        "train", "sample.csv", "--name", "blobs", "--epochs", "4", "--label", "label",
        "--seed", "1", "--models-dir", "models", cwd=folder,
    )  # fmt: skip
    return folder, result


def test_train_then_score_end_to_end(workspace):
    folder, trained = workspace
    assert trained.returncode == 0, trained.stderr
    assert "Trained 'blobs' on 310 rows" in trained.stdout
    for fact in ("20 numeric", "epochs run", "validation loss", "Threshold", "Saved to"):
        assert fact in trained.stdout
    # With labels, 20 % of the rows are held out: 60 normal rows and 2 anomalies.
    assert "measured on 62 held-out rows the model never trained on" in trained.stdout
    assert "epoch 1/4" in trained.stderr  # progress, one line per few epochs off a terminal

    scored = run_cli(
        "score", "sample.csv", "--model", "blobs", "--output", "flagged.csv",
        "--models-dir", "models", cwd=folder,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert scored.stderr == ""  # no TensorFlow chatter: stderr is for the analyst
    detector = aecore.load("blobs", models_dir=folder / "models")
    frame = pd.read_csv(folder / "sample.csv")
    flagged = int(detector.predict(frame).sum())
    assert f"{flagged} flagged" in scored.stdout and "Not used by the model: label" in scored.stdout
    with open(folder / "flagged.csv", encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == flagged + 1
    assert rows[0][-4:] == ["top3_feature", "top3_share", "model", "threshold"]
    export = pd.read_csv(folder / "flagged.csv")
    assert export["rank"].tolist() == list(range(1, flagged + 1))
    assert export["label"].head(10).eq(1).all()  # the planted anomalies rank first


def test_train_warns_when_a_column_that_looks_like_a_label_is_kept_as_an_input(
    tmp_path, capsys
):
    frame = gaussian(seed=2, n_normal=120, n_anomalies=6)
    frame["attack"] = frame.pop("label").map({0: "normal", 1: "smurf"})
    frame.to_csv(tmp_path / "flows.csv", index=False)
    code = cli.main([
        "train", str(tmp_path / "flows.csv"), "--name", "leaky", "--epochs", "1", "--quiet",
        "--role", "attack=categorical", "--models-dir", str(tmp_path / "models"),
    ])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "warning: input column 'attack' looks like a label (named like a label)" in captured.err
    assert "--role attack=label" in captured.err


def test_a_missing_file_gives_one_line_and_exit_code_2(workspace):
    folder, _ = workspace
    missing = run_cli("score", "nope.csv", "--model", "blobs", "--output", "o.csv", cwd=folder)
    assert missing.returncode == 2
    assert error_lines(missing.stderr) == ["error: File not found: nope.csv"]


def test_list_and_show(workspace, capsys):
    folder, _ = workspace
    models = str(folder / "models")
    assert cli.main(["list", "--models-dir", models]) == 0
    out = capsys.readouterr().out
    assert "blobs" in out and "dense" in out and "F1" in out
    assert cli.main(["show", "blobs", "--models-dir", models]) == 0
    out = capsys.readouterr().out
    assert "name:          blobs" in out and "x01 [numeric]" in out and "percentile" in out
    assert "training:      Trained on " in out  # drift.describe_training: the pages' sentence
    assert cli.main(["show", "blobs", "--json", "--models-dir", models]) == 0
    assert '"schema_version": 1' in capsys.readouterr().out
    assert cli.main(["list", "--models-dir", str(folder / "empty")]) == 0
    assert "No saved models" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["score", "{folder}/fewer.csv", "--model", "blobs", "--output", "{folder}/o.csv",
          "--models-dir", "{models}"],
         "The data lacks feature columns the model needs: 'x03', 'x07'."),
        (["score", "{folder}/texty.csv", "--model", "blobs", "--output", "{folder}/o.csv",
          "--models-dir", "{models}"],
         "Column 'x05' should hold numbers but contains text such as 'oops'"),
        (["show", "nothing", "--models-dir", "{models}"], "No saved model named 'nothing'"),
        (["show", "../x", "--models-dir", "{models}"], "not a valid model name"),
        (["train", "{data}", "--name", "a/b", "--models-dir", "{models}"],
         "not a valid model name"),
        (["train", "{folder}/nope.csv", "--name", "ok"], "File not found"),
        (["train", "{data}", "--name", "ok", "--role", "x01"], "NAME=VALUE"),
        (["score", "{data}", "--model", "blobs", "--output", "{folder}/no/o.csv"],
         "does not exist"),
        (["train", "{data}"], "required: --name"),
        (["frobnicate"], "invalid choice"),
    ],
)  # fmt: skip
def test_bad_input_in_process(workspace, capsys, args, message):
    folder, _ = workspace
    sample = pd.read_csv(folder / "sample.csv")
    sample.drop(columns=["x03", "x07"]).to_csv(folder / "fewer.csv", index=False)
    sample.astype({"x05": str}).replace({"x05": {sample["x05"].astype(str)[4]: "oops"}}).to_csv(
        folder / "texty.csv", index=False
    )
    values = {"models": str(folder / "models"), "data": str(folder / "sample.csv"),
              "folder": str(folder)}  # fmt: skip
    try:
        code = cli.main([a.format(**values) for a in args])
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    assert code == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (folder / "o.csv").exists()


@pytest.mark.parametrize("command", ["train", "score", "report", "reviews", "list", "show", None])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"] if command else ["--help"])
    assert stop.value.code == 0
    assert "usage: python -m aecore" in capsys.readouterr().out


def test_the_cli_offers_every_architecture():
    from aecore.model.architectures import ARCHITECTURES

    assert set(cli.ARCHITECTURES) == set(ARCHITECTURES)


def test_progress_is_a_redrawn_bar_on_a_terminal_and_lines_otherwise():
    from aecore.model.training import EpochProgress

    def epochs(bar, n=20):
        for epoch in range(1, n + 1):
            bar(EpochProgress(epoch, n, loss=1.0 / epoch, val_loss=1.1 / epoch, elapsed=0.1,
                              best_epoch=epoch))  # fmt: skip
        bar.close()

    terminal = io.StringIO()
    epochs(cli.EpochBar(terminal, tty=True))
    text = terminal.getvalue()
    assert text.count("\r") == 20 and text.endswith("\n") and text.count("\n") == 1
    assert "epoch 20/20 [" + "#" * 30 + "]" in text

    log = io.StringIO()
    epochs(cli.EpochBar(log, tty=False))
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and 2 <= len(lines) <= 12
    assert lines[0].startswith("epoch 1/20") and lines[-1].startswith("epoch 20/20")


def test_only_tensorflows_start_up_notices_are_dropped_from_stderr():
    """TensorFlow writes its start-up notices (e.g. about oneDNN on AVX-512 CPUs) to stderr
    before TF_CPP_MIN_LOG_LEVEL applies; the CLI drops those and passes on anything else."""
    from aecore.__main__ import _START_UP_NOISE

    dropped = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796088633.236459   24914 port.cc:153] oneDNN custom operations are on.",
    ]
    kept = [
        "W0000 00:00:1796088633.236459   24914 port.cc:153] a warning worth reading",
        "E0000 00:00:1796088633.236459   24914 cpu_feature_guard.cc:10] an error",
        "error: File not found: flows.csv",
    ]
    assert all(_START_UP_NOISE.match(line) for line in dropped)
    assert not any(_START_UP_NOISE.match(line) for line in kept)


def test_score_output_names_each_rows_source_row_and_id_in_chunks_too(tmp_path, capsys):
    frame = gaussian(seed=3, n_normal=120, n_anomalies=6)
    frame.insert(0, "event", [f"e{i:04d}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "events.csv", index=False)
    models = str(tmp_path / "models")
    assert cli.main(["train", str(tmp_path / "events.csv"), "--name", "ev", "--epochs", "2",
                     "--label", "label", "--role", "event=id", "--quiet",
                     "--models-dir", models]) == 0  # fmt: skip
    for chunksize in ("1000", "17"):
        output = tmp_path / f"out-{chunksize}.csv"
        assert cli.main(["score", str(tmp_path / "events.csv"), "--model", "ev", "--all",
                         "--output", str(output), "--chunksize", chunksize,
                         "--models-dir", models]) == 0  # fmt: skip
        assert "source_row, event" in capsys.readouterr().out
        export = pd.read_csv(output)
        assert list(export.columns[:2]) == ["source_row", "event"]
        assert sorted(export["source_row"]) == list(range(2, len(frame) + 2))
        found = frame.iloc[export["source_row"].to_numpy() - 2]  # the header is row 1
        assert (found["event"].to_numpy() == export["event"].to_numpy()).all()
        assert found["x01"].to_numpy() == pytest.approx(export["x01"].to_numpy())
