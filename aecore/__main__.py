"""``python -m aecore``: see ``aecore.cli``."""

import logging
import os
import re
import sys
import tempfile

# Quiet TensorFlow's start-up logging before anything imports it: stderr is for our messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
logging.getLogger("tensorflow").setLevel(logging.ERROR)

# Lines TensorFlow's C++ code writes while it loads, before its logging is set up, so that
# TF_CPP_MIN_LOG_LEVEL does not reach them (e.g. "oneDNN custom operations are on", printed on
# CPUs with AVX-512): absl's notice about early messages, and informational ("I...") lines.
_START_UP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] )"
)


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with stderr (file descriptor 2, which its C++ code writes to) captured,
    then pass on every captured line except the start-up notices above: warnings and errors
    still reach the analyst, and a Python error in the import is raised as usual."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines()
            kept = [line for line in lines if not _START_UP_NOISE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


from aecore import cli  # noqa: E402  (does not import TensorFlow)

# Only the commands that need TensorFlow import it (after their arguments and files are
# checked): --help and bad input answer without its start-up time and memory.
cli.TENSORFLOW_LOADER = _import_tensorflow_quietly

if __name__ == "__main__":
    sys.exit(cli.main())
