"""Worker-side helpers for the Dask tests, in a module of their own so that a worker importing
them does not import TensorFlow."""

import logging

from distributed.diagnostics.plugin import WorkerPlugin


class LoudShutdown(WorkerPlugin):
    """A worker plugin that logs a traceback as its worker shuts down, as a heartbeat racing
    the scheduler's close does now and then (it failed CI once)."""

    def teardown(self, worker):
        try:
            raise OSError("simulated heartbeat: Stream is closed")
        except OSError:
            logging.getLogger("distributed.worker").exception("Failed during heartbeat.")
