"""Keeping a process's resident memory close to what its tensors hold (glibc's malloc, on Linux).

torch's CPU tensors come from malloc. glibc serves blocks under its mmap threshold from heap arenas and raises that
threshold (up to 32 MiB) every time a larger block is freed, so after loading, most weight-sized and
activation-sized blocks live in arenas whose freed space stays resident: measured at full size (paper-bloomz), the
frozen LLM's forward under checkpointing grew the RSS by 0.5 GB while only 74 MB of tensors were live. A fixed
threshold of 1 MiB sends every larger block straight to mmap, returned to the system when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD_BYTES = 1 << 20


def _libc():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None  # glibc only


def return_freed_memory() -> bool:
    """From now on, blocks of 1 MiB and more go back to the system when freed (a fixed mmap threshold also stops
    glibc's dynamic raising of it), and what the heap holds free now is trimmed. Process-wide, so only a process
    that owns its models (a training run from the command line) calls it. False where malloc is not glibc's."""
    libc = _libc()
    if libc is None:
        return False
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    libc.malloc_trim(0)
    return True


def trim() -> bool:
    """Return the heap's free memory to the system now (after releasing large parts of a model)."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))
