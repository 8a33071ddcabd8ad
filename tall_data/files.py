"""Writing result and state files."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path: str | Path, data, indent: int = 2, allow_nan: bool = True) -> None:
    """Write JSON atomically (temp file + rename): readers never see half a file. `allow_nan=False` refuses NaN
    (not JSON) where a result file must be strict."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=allow_nan), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:  # e.g. a full disk: the old file stays, the partial copy goes
        tmp.unlink(missing_ok=True)
        raise
