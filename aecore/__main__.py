"""``python -m aecore``: see ``aecore.cli``."""

import logging
import os
import sys

# Quiet TensorFlow's start-up logging before anything imports it: stderr is for our messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
logging.getLogger("tensorflow").setLevel(logging.ERROR)

from aecore.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
