"""Keeping a process's resident memory close to what its tensors hold (glibc's malloc, on Linux; elsewhere every
function is a no-op that returns False or None).

glibc keeps freed memory instead of returning it to the system, in two ways that matter here:
- Blocks under its mmap threshold come from heap arenas, and it raises that threshold (up to 32 MiB) every time a
  larger block is freed, so weight- and activation-sized blocks end up in arenas whose freed space stays resident:
  measured at full size (paper-bloomz), the frozen LLM's forward under checkpointing grew the RSS by 0.5 GB while only
  74 MB of tensors were live. A fixed 1 MiB threshold (`return_freed_memory`) sends every larger block to mmap.
- Each thread's arena keeps what that thread freed (up to 8 arenas per core), so under many concurrent requests the
  app's RSS rises to the sum of every arena's high-water mark (benchmarks/RESULTS.md, "Load test"): fewer arenas
  (`limit_arenas`, what MALLOC_ARENA_MAX does, before the worker threads exist) and handing free pages back
  (`release_free_memory`, glibc's malloc_trim(0); `Trimmer` throttles it after heavy requests).
These settings are process-wide: only the process that owns the models (a training run, the app's server) sets them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 1 << 20


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


def release_free_memory() -> bool:
    """malloc_trim(0) now: free pages of every arena back to the system; True where glibc did it."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return True


def return_freed_memory() -> bool:
    """From now on, blocks of 1 MiB and more go back to the system when freed (a fixed mmap threshold also stops
    glibc's dynamic raising of it), and what the heap holds free now is trimmed. False where malloc is not glibc's."""
    if _LIBC is None:
        return False
    _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    return release_free_memory()


def limit_arenas(count: int = 2) -> bool:
    """At most `count` malloc arenas for threads created from now on (MALLOC_ARENA_MAX); True if glibc took it."""
    return _LIBC is not None and _LIBC.mallopt(M_ARENA_MAX, int(count)) == 1


def allocator_stats() -> dict | None:
    """glibc's own account (mallinfo2), in bytes: "in_use" by live allocations, "free_held" (freed but kept in the
    arenas), "mmapped" (large blocks mapped on their own); None where it is not glibc."""
    if _LIBC is None or not hasattr(_LIBC, "mallinfo2"):
        return None
    _LIBC.mallinfo2.restype = _MallInfo2
    info = _LIBC.mallinfo2()
    return {"in_use": info.uordblks, "free_held": info.fordblks, "mmapped": info.hblkhd, "heap": info.arena}


class Trimmer:
    """`release_free_memory` at most every `min_interval` seconds: called after each heavy request, so a burst of
    requests trims once."""

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
        release_free_memory()
        self.count += 1
        return True
