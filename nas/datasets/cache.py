"""Decode once: a slow reader's result kept under $NAS_CACHE_DIR (default ~/.cache/nas),
keyed by the path, every file's size and mtime, and what was asked; never beside the data."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path


def cached(path: Path, what: str, read):
    files = sorted(p for p in ([path] if path.is_file() else path.rglob("*")) if p.is_file())
    key = hashlib.sha256(json.dumps([str(path.resolve()), what] + [
        (str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]).encode()).hexdigest()[:24]
    cache = Path(os.environ.get("NAS_CACHE_DIR") or Path.home() / ".cache" / "nas") / f"{key}.pkl"
    if cache.is_file():
        try:
            return pickle.loads(cache.read_bytes())
        except Exception:  # a torn or stale cache file: decode again
            pass
    result = read()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(result, protocol=5))
        tmp.replace(cache)  # atomic: concurrent workers never read half a file
    except OSError:
        pass  # no cache then; correctness does not depend on it
    return result
