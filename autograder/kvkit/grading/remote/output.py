"""What the child processes print: a pipe drained into a bounded buffer (never a file, never the report in full)."""

from __future__ import annotations

import os
import threading

from ...stopping import main_thread_only


class OutputTail:
    """What the child processes printed: the byte count, the first ``head`` and the last ``tail`` bytes."""

    def __init__(self, head: int = 2048, tail: int = 8192) -> None:
        self.head_limit, self.tail_limit = head, tail
        self.head, self.tail = bytearray(), bytearray()
        self.total = 0
        self.lock = threading.Lock()

    def drain(self, fd: int) -> threading.Thread:
        def run():
            main_thread_only()
            try:
                while chunk := os.read(fd, 1 << 16):
                    self.add(chunk)
            except OSError:
                pass
            finally:
                os.close(fd)

        thread = threading.Thread(target=run, name="kvkit-child-output", daemon=True)
        thread.start()
        return thread

    def add(self, chunk: bytes) -> None:
        with self.lock:
            self.total += len(chunk)
            room = self.head_limit - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk[-self.tail_limit:]
            del self.tail[:-self.tail_limit]

    def text(self, limit: int = 1500) -> str:
        """The last ``limit`` characters printed (after the head when little was printed)."""
        with self.lock:
            data = bytes(self.head + self.tail) if self.total <= self.head_limit + self.tail_limit else bytes(self.tail)
        return data.decode(errors="replace")[-limit:]
