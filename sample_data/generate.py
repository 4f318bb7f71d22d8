"""Regenerate the sample CSVs: ``python sample_data/generate.py [--out DIR]``.

All the work is in ``aecore.datasets``; this script only picks the folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run as a file, the script sees only its own folder; the package lives one level up.
sys.path.insert(0, str(HERE.parent))

from aecore.datasets import write_all  # noqa: E402


def main(argv: list[str] | None = None) -> list[Path]:
    """Write every sample CSV into ``--out`` (default: this folder) and list what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into")
    args = parser.parse_args(argv)
    paths = write_all(args.out)
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return paths


if __name__ == "__main__":
    main()
