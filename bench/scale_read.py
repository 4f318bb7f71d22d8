"""Loading a 1,000,000 x 30 numeric CSV (about 190 MB): aecore's reader against pandas (issue 5).

Run by hand: ``python bench/scale_read.py`` (about 2 minutes; the CSV is written once to
``/tmp/aecore_bench``). Prints the median wall and CPU time of

- the reference, ``pandas.read_csv(path)`` with default options (the C parser, one thread);
- aecore: ``aecore.io.reader.read_csv(path)`` followed by
``aecore.io.inference.infer_roles(frame)``;

interleaved run by run, and their ratio (target: aecore <= 0.5x the reference). Then the
profile of aecore's read and the other ways of parsing the same bytes that were tried, so the
limit is visible: parsing numbers costs about the same CPU in every parser, and two cores can
at best halve the wall time of a parser that uses both.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats

from _speed_common import cpu_seconds, load_average, machine, median, numeric_csv, row, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from aecore.io import inference, reader

    print(f"machine: {machine()}")
    path = numeric_csv(args.rows)
    size_mb = path.stat().st_size / 1e6
    payload = path.read_bytes()  # also warms the page cache: every reader starts from memory
    print(f"file: {path} ({size_mb:.0f} MB, {args.rows:,} rows x 30 numeric columns)")

    def aecore_read():
        frame = reader.read_csv(path)
        inference.infer_roles(frame)
        return frame

    reference, ours = [], []
    for repeat in range(args.repeats):
        reference.append(timed(lambda: pd.read_csv(path))[:2])
        ours.append(timed(aecore_read)[:2])
        print(f"run {repeat + 1}: pandas {reference[-1][0]:.2f} s, aecore {ours[-1][0]:.2f} s, "
              f"load {load_average()}", flush=True)  # fmt: skip
    frame = aecore_read()
    check = pd.read_csv(path)
    identical = bool((frame.to_numpy() == check.to_numpy()).all())

    names = list(check.columns)
    typed = {name: pa.float64() for name in names}

    def arrow(threads: bool, types=None, block=4 << 20):
        def run():
            return pacsv.read_csv(
                pa.BufferReader(payload),
                read_options=pacsv.ReadOptions(use_threads=threads, block_size=block),
                convert_options=pacsv.ConvertOptions(column_types=types or {}),
            )

        return run

    def arrow_to_pandas():
        return arrow(True, typed)().to_pandas()

    def arrow_float32():
        return arrow(True, {name: pa.float32() for name in names})()

    def arrow_streaming():
        with pacsv.open_csv(
            pa.BufferReader(payload),
            read_options=pacsv.ReadOptions(block_size=4 << 20),
            convert_options=pacsv.ConvertOptions(column_types=typed),
        ) as reader:
            return pa.Table.from_batches(list(reader))

    def arrow_memory_map():
        with pa.memory_map(str(path)) as source:
            return pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(column_types=typed))

    alternatives = {
        "pyarrow read_csv, 2 threads, inferred types": arrow(True),
        "pyarrow read_csv, 2 threads, float64 given": arrow(True, typed),
        "pyarrow read_csv, 1 thread, float64 given": arrow(False, typed),
        "pyarrow read_csv, float32 given": arrow_float32,
        "pyarrow open_csv (streaming batches)": arrow_streaming,
        "pyarrow read_csv from a memory map": arrow_memory_map,
        "pyarrow read_csv + to_pandas (one 2-D block)": arrow_to_pandas,
        "pandas.read_csv(engine='pyarrow')": lambda: pd.read_csv(path, engine="pyarrow"),
    }
    tried = {}
    for name, function in alternatives.items():
        tried[name] = [timed(function)[:2] for _ in range(max(2, args.repeats // 2))]

    ref_wall = median(r[0] for r in reference)
    ratio = median(o[0] / r[0] for o, r in zip(ours, reference, strict=True))
    print()
    print(f"Loading {size_mb:.0f} MB ({args.rows:,} x 30), median of {args.repeats} runs")
    print(row("", "wall", "CPU", "vs pandas", "target"))
    ref_cpu = median(r[1] for r in reference)
    print(row("pandas.read_csv(path)", f"{ref_wall:.2f} s", f"{ref_cpu:.2f} s", "1x", ""))
    print(row("aecore read_csv + infer_roles", f"{median(o[0] for o in ours):.2f} s",
              f"{median(o[1] for o in ours):.2f} s", f"{ratio:.2f}x", "<= 0.5x"))  # fmt: skip
    print(f"    same values as pandas: {identical}")
    print()
    print("Other ways of parsing the same bytes (from memory, median wall and CPU):")
    for name, runs in tried.items():
        wall, cpu = median(r[0] for r in runs), median(r[1] for r in runs)
        print(row(f"  {name}", f"{wall:.2f} s", f"{cpu:.2f} s", f"{wall / ref_wall:.2f}x", ""))

    print()
    print("Profile of one aecore read (functions by own time):")
    profile = cProfile.Profile()
    cpu = cpu_seconds()
    profile.enable()
    aecore_read()
    profile.disable()
    print(f"  CPU {cpu_seconds() - cpu:.2f} s")
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(8)
    lines = [line for line in text.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
    for line in lines[start : start + 9]:
        print("  " + line[:150])
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
