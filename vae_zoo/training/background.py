"""One background thread for slow writes, so that the training thread does not wait on them."""

import queue
import threading


class BackgroundWriter:
    """Runs submitted writes in order, one at a time, on its own thread.

    The training thread computes what to write (the cheap part: arrays of the current weights)
    and submits the function that encodes and writes it (PNG encoding, summary files). At most
    `max_pending` writes wait; one more makes `submit` wait, so memory stays flat when writes fall
    behind. Use it as a context manager: leaving the block, normally or by an exception, waits
    for every submitted write, so nothing is lost or half-written; the first error of a write is
    raised then (or by the next `submit`), and the writes after it are skipped.

    Args:
        max_pending: int. Writes that may wait in the queue.
    """

    def __init__(self, max_pending=4):
        self._queue = queue.Queue(max_pending)
        self._error = None
        self._thread = threading.Thread(target=self._run, name="vae_zoo-writer", daemon=True)
        self._thread.start()

    def submit(self, write, *args):
        """Queues `write(*args)`; raises the error of an earlier write, if one failed."""
        self._raise_error()
        if not self._thread.is_alive():
            raise RuntimeError("the background writer is closed")
        self._queue.put((write, args))

    def close(self):
        """Waits for every submitted write; raises the first error of one."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise_error()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
            return
        try:  # already failing: finish the writes, keep the original exception
            self.close()
        except Exception:
            pass

    def _run(self):
        while (item := self._queue.get()) is not None:
            write, args = item
            if self._error is None:
                try:
                    write(*args)
                except BaseException as e:  # handed to the training thread
                    self._error = e

    def _raise_error(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error
