"""``python -m aecore``: train, score, report, review marks, list and show saved models from the
command line.

Bad input ends with one line on stderr and exit code 2, never a traceback. TensorFlow is only
imported by the commands that need it, after their arguments and files have been checked.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import aecore
from aecore.errors import AecoreError
from aecore.evaluation.thresholds import METHODS as THRESHOLD_METHODS
from aecore.io.roles import ROLE_NAMES

EXIT_BAD_INPUT = 2
# Set by ``python -m aecore``: imports TensorFlow with its start-up notices filtered out. Called
# once, right before the first command that needs TensorFlow (after arguments and files are
# checked), so --help and bad input answer without loading it.
TENSORFLOW_LOADER: Any = None
# As in ``aecore.model.architectures`` (not imported here: it loads Keras, which --help does not
# need).
ARCHITECTURES = ("linear", "dense", "sparse", "denoising", "conv", "variational")


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors reported as one line and exit code 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------------- progress


class EpochBar:
    """Training progress on stderr: a redrawn bar on a terminal, a line every few epochs else."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, width: int = 30):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.width = width
        self.drawn = False

    def __call__(self, progress: Any) -> None:
        epochs = max(int(progress.epochs), 1)
        filled = int(round(self.width * min(progress.epoch, epochs) / epochs))
        bar = "#" * filled + "-" * (self.width - filled)
        val = "" if progress.val_loss is None else f"  val_loss {progress.val_loss:.4g}"
        text = f"epoch {progress.epoch}/{epochs} [{bar}] loss {progress.loss:.4g}{val}"
        if progress.stage == "second":
            text = "second model " + text
            if self.tty and progress.epoch == 1 and self.drawn:
                self.stream.write("\n")  # keep the first model's last line
        if self.tty:
            self.stream.write("\r" + text)
            self.drawn = True
        elif progress.epoch == 1 or progress.epoch % max(1, epochs // 10) == 0:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


class RowCounter:
    """Scoring progress on stderr (terminal only): the rows done so far, redrawn in place."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.drawn = False

    def __call__(self, stage: str, rows: int) -> None:
        if self.tty:
            self.stream.write(f"\r{stage}: {rows:,} rows ")
            self.stream.flush()
            self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------- helpers


def _existing_file(path: str) -> Path:
    """Check the data file before anything slow is imported."""
    file = Path(path)
    if file.is_dir():
        raise AecoreError(f"{file} is a folder, not a CSV file.")
    if not file.is_file():
        raise AecoreError(f"File not found: {file}")
    return file


def _key_values(pairs: Sequence[str], what: str) -> dict[str, str]:
    result = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise AecoreError(f"{what} must look like NAME=VALUE, got {pair!r}.")
        result[key.strip()] = value.strip()
    return result


def _number(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _format_number(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def _params_text(params: dict) -> str:
    shown = {k: v for k, v in (params or {}).items() if v is not None}
    return ", ".join(f"{k}={_format_number(v)}" for k, v in shown.items())


def _warn_lines(caught: list) -> None:
    for warning in caught:
        print(f"warning: {str(warning.message).splitlines()[0]}", file=sys.stderr)


def _need_tensorflow() -> None:
    if TENSORFLOW_LOADER is not None and "tensorflow" not in sys.modules:
        TENSORFLOW_LOADER()


def _load(name: str, models_dir: str | None, version: str | None = None):
    from aecore import store

    store.check_name(name)
    store.read_meta(name, models_dir=models_dir, version=version)  # fails before TF loads
    _need_tensorflow()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", store.BundleVersionWarning)
        detector = aecore.load(name, models_dir=models_dir, version=version)
    _warn_lines([w for w in caught if issubclass(w.category, store.BundleVersionWarning)])
    return detector


# ---------------------------------------------------------------------------- commands


def _train(args: argparse.Namespace) -> int:
    from aecore import store
    from aecore.io import inference, reader

    store.check_name(args.name)
    if args.sample is None and (len(args.data) > 1 or args.engine == "dask"):
        raise AecoreError(
            "Several inputs (or --engine dask) train on a sample: pass --sample N, the number "
            "of rows to draw uniformly over the files."
        )
    if args.sample is None and (args.workers is not None or args.scheduler):
        raise AecoreError("--workers and --scheduler go with --engine dask.")
    source = _existing_file(args.data[0]) if args.sample is None else None
    overrides = _key_values(args.role, "--role")
    for column, role in overrides.items():
        if role not in ROLE_NAMES:
            raise AecoreError(
                f"Unknown role {role!r} for {column!r}; choose one of {', '.join(ROLE_NAMES)}."
            )
    if args.label:
        overrides[args.label] = "label"
    if args.time:
        overrides[args.time] = "time"
    threshold_params = {
        key: _number(value)
        for key, value in _key_values(args.threshold_param, "--threshold-param").items()
    }

    network = _network_settings(args)  # every setting checked before the file is read

    training_data = None
    if source is not None:
        frame = reader.read_csv(source)  # a bad file fails before TensorFlow loads
    else:
        from aecore.workflows import sampling

        frame, training_data = sampling.sample_rows(
            args.data, args.sample, seed=args.seed, scheduler=args.scheduler,
            workers=(args.workers if args.engine == "dask" else 0),
        )  # fmt: skip
        print(
            f"Sampled {training_data['sample_rows']:,} of {training_data['rows_available']:,} "
            f"rows from {len(training_data['files'])} files"
            + (" on Dask." if args.engine == "dask" else "."),
            file=sys.stderr,
        )
    _need_tensorflow()
    from aecore.detector import AnomalyDetector

    detector = AnomalyDetector(
        architecture=args.architecture,
        code_size=args.code_size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        split=args.split,
        test_share=args.test_share,
        threshold_method=args.threshold_method,
        threshold_params=threshold_params or None,
        window=args.window,
        roles=overrides or None,
        random_state=args.seed,
        **network,
    )
    bar = EpochBar(tty=None if not args.quiet else False)
    try:
        with warnings.catch_warnings():  # the notes are in the summary
            warnings.filterwarnings("ignore", "Column .* treated as missing", UserWarning)
            detector.fit(frame, progress=None if args.quiet else bar)
    finally:
        bar.close()
    versions_before = _version_count(args.name, args.models_dir)
    folder = store.save(
        detector, args.name, models_dir=args.models_dir, description=args.description,
        training_data=training_data,
    )
    print(_train_summary(detector, frame, args.name, folder, versions_before))
    for column, why in inference.label_like_inputs(frame, detector.roles_).items():
        print(
            f"warning: input column {column!r} looks like a label ({why}): as a model input it "
            f"can give the answer away; make it the label (--role {column}=label) or leave it "
            f"out (--role {column}=ignore).",
            file=sys.stderr,
        )
    return 0


def _network_settings(args: argparse.Namespace) -> dict:
    """The optional network settings given on the command line, after checking every train
    setting with ``aecore.model.settings.check_settings`` (the API's own checks; no TensorFlow)."""
    from aecore.model.settings import check_settings

    network = {
        key: value
        for key, value in (
            ("hidden_sizes", args.hidden_sizes), ("activation", args.activation),
            ("noise_std", args.noise_std), ("dropout", args.dropout), ("l1", args.l1),
        )
        if value is not None
    }  # fmt: skip
    check_settings(
        {
            "architecture": args.architecture, "code_size": args.code_size,
            "epochs": args.epochs, "batch_size": args.batch_size,
            "learning_rate": args.learning_rate, "patience": args.patience,
            "window": args.window, "test_share": args.test_share,
            "threshold_method": args.threshold_method, "random_state": args.seed, **network,
        }
    )  # fmt: skip
    return network


def _widths(text: str) -> list[int]:
    """``--hidden-sizes 64,16``: whole numbers separated by commas."""
    try:
        widths = [int(part) for part in text.replace(" ", ",").split(",") if part.strip()]
    except ValueError:
        widths = []
    if not widths:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas such as 64,16, got {text!r}"
        )
    return widths


def _test_share(text: str) -> float | str:
    """``--test-share``: "auto" or a number (``AnomalyDetector`` checks its range)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a share such as 0.2, got {text!r}"
        ) from None


def _version_count(name: str, models_dir: str | None) -> int:
    from aecore import store

    try:
        return len(store.list_versions(name, models_dir=models_dir))
    except AecoreError:
        return 0


def _train_summary(detector, frame, name: str, folder: Path, versions_before: int) -> str:
    from aecore.store import metrics_text

    roles = detector.roles_
    history = detector.history_
    val_loss = history.get("best_val_loss")
    if val_loss is None and history.get("val_loss"):
        val_loss = min(history["val_loss"])
    choice = detector.threshold_choice_
    lines = [
        f"Trained {name!r} on {len(frame):,} rows ({detector.n_train_rows_:,} used for training; "
        f"trained on {detector.trained_on_} rows).",
        f"Features: {len(roles.features)} numeric, {len(roles.categorical)} categorical"
        + (f"; time column {roles.time!r}" if roles.time else "")
        + (f"; label column {roles.label!r}" if roles.label else "")
        + (f"; ids: {', '.join(roles.ids)}" if roles.ids else "")
        + (f"; ignored: {', '.join(roles.ignore)}" if roles.ignore else "")
        + ".",
        f"Architecture {detector.autoencoder_.architecture}, code size {detector.code_size_}; "
        f"{history.get('epochs_run', 0)} epochs run, validation loss "
        f"{_format_number(float(val_loss)) if val_loss is not None else 'n/a'}.",
        _schedule_line(detector),
        f"Threshold {_format_number(detector.threshold_)} ({choice.method}"
        + (f": {_params_text(choice.params)}" if choice.params else "")
        + ").",
    ]
    for summary in (detector.memory_summary(), detector.second_model_summary()):
        if summary:
            lines.insert(3, summary)
    lines += [f"Note: {note}" for note in getattr(detector.preprocessor_, "notes_", [])]
    evaluation = getattr(detector, "evaluation_", None)
    if evaluation:
        from aecore.evaluation.metrics import evaluation_scope_text

        lines.append(
            f"Evaluation, {evaluation_scope_text(evaluation)}: {metrics_text(evaluation)}, "
            f"recall {evaluation.get('recall', 0.0):.2f}, precision "
            f"{evaluation.get('precision', 0.0):.2f}; "
            f"{evaluation.get('n_flagged', 0):,} flagged of {evaluation.get('n_rows', 0):,}."
        )
    kept = " (the previous version is kept)" if versions_before else ""
    lines.append(f"Saved to {folder}{kept}.")
    return "\n".join(lines)


def _schedule_line(detector) -> str:
    """The schedule the detector trained with (as the dashboard's Train page shows it)."""
    used = detector.training_
    batch = min(int(used["batch_size"]), int(detector.n_train_rows_))
    return (
        f"Schedule: at most {used['epochs']} epochs, batches of {batch:,}, learning rate "
        f"{_format_number(float(used['learning_rate']))}, early-stopping patience "
        f"{used['patience']}."
    )


def _score(args: argparse.Namespace) -> int:
    from aecore import store

    store.check_name(args.model)
    if args.engine == "dask":
        return _score_dask(args)
    if args.workers is not None or args.scheduler or args.resume:
        raise AecoreError("--workers, --scheduler and --resume go with --engine dask.")
    if len(args.data) > 1:
        raise AecoreError(
            f"{len(args.data)} inputs given: one file is scored on this machine; score several "
            "files, folders or globs with --engine dask."
        )
    source = _existing_file(args.data[0])
    output = Path(args.output)
    if not output.parent.is_dir():
        raise AecoreError(f"Cannot write {output}: the folder {output.parent} does not exist.")
    store.read_meta(args.model, models_dir=args.models_dir, version=args.version)
    from aecore.io.chunks import open_csv_chunks
    from aecore.workflows.chunked import score_csv

    # The file is checked by train's reading rules before TensorFlow and the model load.
    chunks = open_csv_chunks(source, args.chunksize)
    detector = _load(args.model, args.models_dir, args.version)

    from aecore.workflows.review import ReviewLookup

    marks = ReviewLookup(chunks.names, models_dir=args.models_dir)
    counter = RowCounter()
    try:
        result = score_csv(
            chunks,
            detector,
            args.output,
            model_name=args.model,
            all_rows=args.all,
            chunksize=args.chunksize,
            progress=counter,
            reviews=marks if marks.has_marks else None,
        )
    finally:
        counter.close()
    print(
        f"Scored {result['rows']:,} rows with model {args.model!r}: {result['flagged']:,} flagged "
        f"(threshold {_format_number(result['threshold'])})."
    )
    print(f"Wrote {result['exported']:,} rows to {result['output']}.")
    carried = "".join(f", {c}" for c in result.get("id_columns") or [])
    print(
        f"Each row starts with source_row{carried}: source_row is its row number in "
        f"{source.name} as a spreadsheet shows it (the header is row 1, so the first data row "
        "is 2)."
    )
    if marks.has_marks:
        print("Review marks of this data set are in review_status and review_note.")
    if result["extra_columns"]:
        print(f"Not used by the model: {', '.join(result['extra_columns'])}.")
    for column, values in result["unseen_categories"].items():
        shown = ", ".join(map(repr, values[:5])) + (", ..." if len(values) > 5 else "")
        print(f"Categories of {column!r} the model never saw (encoded as none): {shown}.")
    return 0


def _score_dask(args: argparse.Namespace) -> int:
    """``score PATH... --engine dask``: every file on a Dask cluster (see
    ``aecore.workflows.distributed``); exit code 2 if any file failed."""
    from aecore.workflows import distributed

    files = distributed.expand_inputs(args.data)  # bad paths fail before a cluster starts
    out = Path(args.output)
    terminal = sys.stderr.isatty()

    def started(link):
        where = f"scheduler {args.scheduler}" if args.scheduler else "a local cluster"
        plural = "s" if len(files) != 1 else ""
        print(f"Scoring {len(files)} file{plural} on {where}; Dask dashboard: "
              f"{link or 'not available'}", file=sys.stderr, flush=True)  # fmt: skip

    failed = set()  # files whose failure is shown: once, however many of its pieces fail

    def progress(result, done, total):  # a call a task: a file, or a piece of a Parquet file
        width = 30
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "-" * (width - filled)
        name = Path(result["file"]).name
        if result.get("pieces", 1) > 1:
            name += f" piece {result['piece'] + 1}/{result['pieces']}"
        shown = "failed" in result and result["file"] not in failed
        if "failed" in result:
            line = f"failed: {result['failed']}" if shown else f"{name}: failed"
            failed.add(result["file"])
        else:
            line = f"{name}: {result['rows']:,} rows, {result['flagged']:,} flagged"
            line += " (resumed)" if result.get("resumed") else ""
        end = "\n" if not terminal or done == total or shown else "\r"
        print(f"[{bar}] {done}/{total} {line}", file=sys.stderr, end=end, flush=True)

    summary = distributed.score_on_dask(
        args.data, model=args.model, output=out, models_dir=args.models_dir,
        version=args.version, workers=args.workers, scheduler=args.scheduler,
        all_rows=args.all, resume=args.resume, chunksize=args.chunksize, top_n=args.top,
        progress=progress, on_start=started,
    )  # fmt: skip
    print(
        f"Scored {summary['rows_scored']:,} rows in {summary['files'] - len(summary['failures'])}"
        f" of {summary['files']} files with model {args.model!r}: "
        f"{summary['rows_flagged']:,} flagged."
    )
    print(f"Wrote Parquet parts to {out / distributed.PARTS}, {distributed.SUMMARY} and "
          f"{distributed.TOP} (the {args.top} highest-scoring rows) to {out}.")  # fmt: skip
    for failure in summary["failures"]:
        print(f"Failed: {failure['reason']}", file=sys.stderr)
    if summary["failures"]:
        print("Run the same command with --resume after fixing them: the files already scored "
              "are skipped.", file=sys.stderr)  # fmt: skip
        return 2
    return 0


def _report(args: argparse.Namespace) -> int:
    from aecore import store
    from aecore.io import reader

    store.check_name(args.model)
    source = _existing_file(args.data)
    output = Path(args.output)
    if not output.parent.is_dir():
        raise AecoreError(f"Cannot write {output}: the folder {output.parent} does not exist.")
    if args.top < 0:
        raise AecoreError(f"--top must be 0 or more, got {args.top}.")
    meta = store.read_meta(args.model, models_dir=args.models_dir, version=args.version)
    frame = reader.read_csv(source)  # a bad file fails before TensorFlow loads
    detector = _load(args.model, args.models_dir, args.version)
    from aecore.workflows import report
    from aecore.workflows.review import ReviewBook

    try:
        book = ReviewBook(frame, models_dir=args.models_dir, data_name=source.name)
    except AecoreError as error:  # the report is still useful without the marks
        print(f"warning: the report has no review marks: {_one_line(error)}", file=sys.stderr)
        book = None
    text, summary = report.render_report(
        detector, frame, model_name=args.model, data_name=source.name, reviews=book,
        drift=report.latest_drift_verdict(args.model, models_dir=args.models_dir),
        top_n=args.top, model_meta=meta,
    )  # fmt: skip
    report.write_report(text, output)
    print(f"Report written to {output} ({summary['flagged']:,} flagged rows, "
          f"{summary['reviewed']:,} reviewed)")  # fmt: skip
    return 0


def _reviews(args: argparse.Namespace) -> int:
    """``reviews export DATA --output marks.csv`` / ``reviews import DATA marks.csv``: the
    analyst's marks on DATA's rows as CSV (``row``, ``status``, ``note``)."""
    from aecore.io import reader
    from aecore.workflows.review import ReviewBook

    source = _existing_file(args.data)
    if args.action == "import":
        marks = _existing_file(args.marks)
    else:
        output = Path(args.output)
        if not output.parent.is_dir():
            raise AecoreError(f"Cannot write {output}: the folder {output.parent} does not exist.")
    book = ReviewBook(reader.read_csv(source), models_dir=args.models_dir, data_name=source.name)
    if args.action == "export":
        data = book.to_csv()
        temporary = output.with_name(f".{output.name}.partial")
        temporary.write_bytes(data)
        os.replace(temporary, output)
        counts = book.counts()
        print(f"Wrote {counts['reviewed']:,} marks of {source.name} to {output} "
              f"({counts['anomaly']:,} confirmed anomalies, {counts['normal']:,} false alarms, "
              f"{counts['unsure']:,} unsure).")  # fmt: skip
        if book.unmatched:
            print(f"{book.unmatched:,} more marks of this data set are on rows not in "
                  f"{source.name}; they are kept.")  # fmt: skip
        return 0
    result = book.import_csv(marks, replace=args.replace)
    print(f"{result['imported']:,} marks imported into {source.name}'s reviews "
          f"(saved in {book.path.parent}).")  # fmt: skip
    for row, reason in result["skipped"][:5]:
        print(f"warning: row {row} skipped: {reason}", file=sys.stderr)
    if len(result["skipped"]) > 5:
        print(f"warning: {len(result['skipped']) - 5:,} more rows skipped", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from aecore import store

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        models = store.list_models(args.models_dir)
    _warn_lines(caught)
    broken = models[models["problem"] != ""]
    models = models[models["problem"] == ""]
    for name, problem in zip(broken["name"], broken["problem"], strict=True):
        print(f"warning: model {name!r} cannot be used: {problem}", file=sys.stderr)
    if models.empty:
        usable = "usable " if len(broken) else ""
        print(f"No {usable}saved models in {store.models_dir_path(args.models_dir)}.")
        return 0
    table = models[
        ["name", "architecture", "n_features", "created", "threshold", "threshold_method",
         "metrics", "n_train_rows", "versions"]
    ].copy()
    table["threshold"] = table["threshold"].map(_format_number)
    print(table.to_string(index=False))
    return 0


def _show(args: argparse.Namespace) -> int:
    from aecore import store
    from aecore.workflows import retraining

    meta = store.read_meta(args.name, models_dir=args.models_dir, version=args.version)
    if args.json:
        print(json.dumps(meta, indent=1, ensure_ascii=False))
        return 0
    architecture = meta.get("architecture") or {}
    threshold = meta.get("threshold") or {}
    history = meta.get("history") or {}
    roles = meta.get("roles") or {}
    features = meta.get("features") or []
    versions = store.list_versions(args.name, models_dir=args.models_dir)

    lines = [
        f"name:          {meta.get('name')}",
        f"version:       {meta.get('version')} ({len(versions)} saved)",
        f"created:       {meta.get('created')}",
    ]
    if meta.get("description"):
        lines.append(f"description:   {meta['description']}")
    lines += [
        f"architecture:  {architecture.get('name')} (code size {architecture.get('code_size')}, "
        f"window {architecture.get('window')}, {architecture.get('parameters', '?')} weights)",
        f"features ({len(features)}): "
        + ", ".join(f"{f['name']} [{f.get('kind', f.get('role'))}]" for f in features[:30])
        + (f", ... and {len(features) - 30} more (see --json)" if len(features) > 30 else ""),
        f"time column:   {roles.get('time') or '-'}",
        f"label column:  {roles.get('label') or '-'}",
        f"id columns:    {', '.join(roles.get('ids') or []) or '-'}",
        f"ignored:       {', '.join(roles.get('ignore') or []) or '-'}",
        f"training:      {retraining.describe_training(meta)}",
        f"epochs run:    {history.get('epochs_run')} (best {history.get('best_epoch')}, "
        f"validation loss {_format_number(history.get('best_val_loss'))})",
        f"threshold:     {_format_number(threshold.get('value'))} ({threshold.get('method')}"
        + (f": {_params_text(threshold.get('params'))}" if threshold.get("params") else "")
        + ")",
        f"evaluation:    {store.metrics_text(meta.get('evaluation')) or '-'}",
        "libraries:     "
        + ", ".join(f"{k} {v}" for k, v in (meta.get("libraries") or {}).items()),
        f"model sha256:  {meta.get('model_sha256')}",
    ]
    print("\n".join(lines))
    return 0


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m aecore`` argument parser (one sub-parser per command)."""
    parser = _Parser(
        prog="python -m aecore",
        description="Autoencoder anomaly detection for CSV files: train, score, report, list, "
        "show.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def models_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--models-dir",
            metavar="DIR",
            help="folder of saved models (default: $AECORE_MODELS_DIR, else the project's models/)",
        )

    train = commands.add_parser(
        "train", help="train a model on a CSV file and save it",
        description="Train an autoencoder on DATA.csv and save it as a model bundle.",
    )
    train.add_argument("data", nargs="+", metavar="PATH", help="training data (CSV or "
                       "Parquet); with --sample, files, folders or globs")
    train.add_argument("--sample", type=int, metavar="N", help="train on N rows drawn "
                       "uniformly at random over all the files (the bundle records N and the "
                       "files)")
    train.add_argument("--engine", choices=("local", "dask"), default="local",
                       help="with --sample: draw it in this process (local) or on a Dask "
                       "cluster (dask); training itself runs here")
    train.add_argument("--workers", type=int, metavar="N", help="with --engine dask: worker "
                       "processes of the local cluster (default: the cores)")
    train.add_argument("--scheduler", metavar="ADDRESS", help="with --engine dask: an "
                       "existing cluster's scheduler")
    train.add_argument("--name", required=True, help="model name (letters, digits, - _ .)")
    train.add_argument("--architecture", choices=ARCHITECTURES, default="dense")
    train.add_argument("--code-size", type=int, metavar="N", help="latent size (default: auto)")
    train.add_argument("--epochs", type=int, metavar="N", help="maximum epochs (default: auto)")
    train.add_argument("--batch-size", type=int, metavar="N", help="rows per step (default: auto)")
    train.add_argument("--learning-rate", type=float, metavar="RATE", help="default: auto")
    train.add_argument("--patience", type=int, metavar="N",
                       help="epochs without improvement before stopping early (default: auto)")
    train.add_argument("--hidden-sizes", type=_widths, metavar="W,W",
                       help="encoder layer widths, e.g. 64,16 (the decoder mirrors them; "
                       "default: auto)")
    train.add_argument("--activation", metavar="NAME",
                       help="relu (default), tanh, elu, selu, ...")
    train.add_argument("--noise-std", type=float, metavar="STD",
                       help="input noise, 0 to 1 (denoising architecture; default 0.1)")
    train.add_argument("--dropout", type=float, metavar="SHARE",
                       help="input dropout, 0 to below 1 (denoising architecture; default 0)")
    train.add_argument("--l1", type=float, metavar="PENALTY",
                       help="L1 penalty on the code, 0 to 1 (sparse architecture)")
    train.add_argument("--window", type=int, default=1, metavar="N",
                       help="rows per window (conv architecture only)")
    train.add_argument("--label", metavar="COL", help="column of known labels (1/anomaly)")
    train.add_argument("--time", metavar="COL", help="column that orders the rows in time")
    train.add_argument("--role", action="append", metavar="COL=ROLE",
                       help=f"a column's role ({', '.join(ROLE_NAMES)}); repeatable")
    train.add_argument(
        "--split",
        choices=("auto", "random", "chronological"),
        default="auto",
        help="auto: chronological when there is a time column, else random",
    )
    train.add_argument("--test-share", type=_test_share, default="auto", metavar="SHARE",
                       help="share of rows held out to evaluate against labels (default auto: "
                       "20%% when the labels hold normal rows and anomalies, else none)")
    train.add_argument("--threshold-method", choices=THRESHOLD_METHODS, default="percentile")
    train.add_argument("--threshold-param", action="append", metavar="KEY=VALUE",
                       help="e.g. percentile=99.5 or k=3; repeatable")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--description", default="", help="a note saved with the model")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    models_dir(train)
    train.set_defaults(handler=_train)

    score = commands.add_parser(
        "score", help="score a CSV file with a saved model and export the result",
        description="Score DATA.csv with a saved model; write flagged rows (or --all) to a CSV "
        "sorted by error, each row with its source_row (its row number in DATA.csv as a "
        "spreadsheet shows it: the header is row 1) and the model's id columns, then the "
        "original columns, the error, rank, flag, top features, model and threshold.",
    )
    score.add_argument("data", nargs="+", metavar="PATH", help="data to score (CSV or "
                       "Parquet, any size); with --engine dask, files, folders or globs")
    score.add_argument("--model", required=True, help="name of a saved model")
    score.add_argument("--output", required=True, metavar="OUT", help="export file to write "
                       "(a CSV); with --engine dask, a folder for Parquet parts and the summary")
    score.add_argument("--engine", choices=("local", "dask"), default="local",
                       help="local (default): one file in this process; dask: many files on a "
                       "Dask cluster (needs dask[distributed])")
    score.add_argument("--workers", type=int, metavar="N", help="with --engine dask and no "
                       "--scheduler: worker processes of the local cluster (default: the cores)")
    score.add_argument("--scheduler", metavar="ADDRESS", help="with --engine dask: an "
                       "existing cluster's scheduler, e.g. tcp://host:8786")
    score.add_argument("--resume", action="store_true", help="with --engine dask: keep the "
                       "files already scored in OUT and score the rest")
    score.add_argument("--top", type=int, default=100, metavar="N", help="with --engine dask: "
                       "rows in top_flagged.csv (default 100)")
    score.add_argument("--all", action="store_true", help="export every row, not only flagged")
    score.add_argument("--version", help="a previous version of the model (see 'show')")
    score.add_argument("--chunksize", type=int, default=100_000, metavar="ROWS",
                       help="rows per chunk; bounds the memory used (default 100000)")
    models_dir(score)
    score.set_defaults(handler=_score)

    report = commands.add_parser(
        "report", help="write a self-contained HTML report of a model on a data file",
        description="Score PATH with a saved model and write one HTML file to attach to a "
        "ticket: the data summary, the model card, the error histogram with the threshold, the "
        "top flagged rows (each with its source_row, id columns, top features and review mark), "
        "the review summary and the latest drift verdict. Nothing in it loads from the network.",
    )
    report.add_argument("data", metavar="PATH", help="data to report on (CSV or Parquet)")
    report.add_argument("--model", required=True, help="name of a saved model")
    report.add_argument("--version", help="a previous version of the model (see 'show')")
    report.add_argument("--output", default="report.html", metavar="OUT",
                        help="HTML file to write (default: report.html)")
    report.add_argument("--top", type=int, default=25, metavar="N",
                        help="flagged rows listed, highest error first (default 25)")
    models_dir(report)
    report.set_defaults(handler=_report)

    reviews = commands.add_parser(
        "reviews", help="move the review marks of a data file as CSV (export or import)",
        description="Export or import the analyst's review marks on the rows of DATA as a CSV "
        "with the columns row (the row's number in DATA as a spreadsheet shows it: the header "
        "is row 1), status (anomaly, normal = a false alarm, or unsure) and note. Marks are "
        "kept in the models folder per data set and apply to a row while its values are "
        "unchanged.",
    )
    actions = reviews.add_subparsers(dest="action", required=True, metavar="ACTION")
    exporting = actions.add_parser("export", help="write the marks of DATA to a CSV",
                                   description="Write the review marks of DATA's rows to a "
                                   "spreadsheet-safe CSV (row, status, note).")  # fmt: skip
    exporting.add_argument("data", metavar="DATA", help="the data file (CSV or Parquet)")
    exporting.add_argument("--output", required=True, metavar="OUT", help="CSV file to write")
    models_dir(exporting)
    importing = actions.add_parser("import", help="read marks for DATA from a CSV",
                                   description="Read review marks (row, status, note) for "
                                   "DATA's rows from a CSV and save them.")  # fmt: skip
    importing.add_argument("data", metavar="DATA", help="the data file (CSV or Parquet)")
    importing.add_argument("marks", metavar="MARKS", help="CSV with row, status and note")
    importing.add_argument("--replace", action="store_true",
                           help="forget DATA's other marks first")  # fmt: skip
    models_dir(importing)
    reviews.set_defaults(handler=_reviews)

    listing = commands.add_parser(
        "list", help="list saved models", description="List the saved models."
    )
    models_dir(listing)
    listing.set_defaults(handler=_list)

    show = commands.add_parser(
        "show", help="show a saved model's metadata",
        description="Show a saved model's columns, training, threshold and evaluation.",
    )
    show.add_argument("name", help="model name")
    show.add_argument("--version", help="a previous version")
    show.add_argument("--json", action="store_true", help="print the whole meta.json")
    models_dir(show)
    show.set_defaults(handler=_show)
    return parser


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 2 bad input, 1 unexpected failure)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except AecoreError as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
    except FileNotFoundError as error:
        print(f"error: File not found: {error.filename}", file=sys.stderr)
    except OSError as error:
        print(f"error: {_one_line(error.strerror or error)}: {error.filename}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if os.environ.get("AECORE_DEBUG"):
            raise
        print(
            f"error: unexpected {type(error).__name__}: {_one_line(error)} "
            "(set AECORE_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1
    return EXIT_BAD_INPUT
