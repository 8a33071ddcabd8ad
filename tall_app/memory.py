"""The server process's memory, seen from glibc's allocator (Linux only; elsewhere every function is a no-op).

Under many concurrent requests, torch and Python free what a prediction used, but glibc keeps freed memory in the
arena of the thread that used it (up to 8 arenas per core) instead of returning it to the system, so the process's
RSS rises to the sum of every arena's high-water mark although nothing is referenced any more (measured in
benchmarks/RESULTS.md, "Load test"). Two remedies, both through glibc's own calls: fewer arenas (`limit_arenas`,
what `MALLOC_ARENA_MAX` does, set at start before the worker threads exist) and handing free pages back
(`release_free_memory`, glibc's `malloc_trim(0)`), called after heavy requests.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

M_ARENA_MAX = -8  # glibc's mallopt parameter number for the arena limit (malloc.h)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _libc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None  # glibc, not musl/macOS


_LIBC = _libc()


def allocator_stats() -> dict | None:
    """glibc's own account (mallinfo2), in bytes: "in_use" by live allocations, "free_held" (freed but kept in the
    arenas), "mmapped" (large blocks mapped on their own); None where it is not glibc."""
    if _LIBC is None or not hasattr(_LIBC, "mallinfo2"):
        return None
    _LIBC.mallinfo2.restype = _MallInfo2
    info = _LIBC.mallinfo2()
    return {"in_use": info.uordblks, "free_held": info.fordblks, "mmapped": info.hblkhd, "heap": info.arena}


def limit_arenas(count: int = 2) -> bool:
    """At most `count` malloc arenas for threads created from now on (MALLOC_ARENA_MAX); True if glibc took it."""
    return _LIBC is not None and _LIBC.mallopt(M_ARENA_MAX, int(count)) == 1


class Trimmer:
    """Hands free heap pages back to the system (malloc_trim(0)) at most every `min_interval` seconds: called after
    each heavy request, so a burst of requests trims once."""

    def __init__(self, min_interval: float = 2.0):
        self.min_interval = min_interval
        self._last = 0.0
        self._lock = threading.Lock()
        self.count = 0

    def __call__(self) -> bool:
        if _LIBC is None:
            return False
        with self._lock:
            now = time.monotonic()
            if now - self._last < self.min_interval:
                return False
            self._last = now
        _LIBC.malloc_trim(0)
        self.count += 1
        return True


def release_free_memory() -> bool:
    """malloc_trim(0) now: free pages of every arena back to the system; True where glibc did it."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return True
