"""Atomic file writes: write to a temporary name beside the target, then rename."""

import json
import os
import tempfile
from pathlib import Path

TEMPORARY = ".tmp-"  # marks the temporary names, `.NAME.tmp-XXXXXXXX.SUFFIX`


def atomic_write(path, write):
    """Calls `write(tmp_path)`, then renames tmp_path to `path`.

    A crash leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}{TEMPORARY}",
                               suffix="".join(path.suffixes[-2:]))
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # on disk before the rename, so a power cut cannot tear it
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a shipped file is world-readable
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path, data):
    return atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))


def write_text(path, text):
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def remove_temporaries(directory):
    """Deletes what `atomic_write`s killed mid-write left in `directory` (not below)."""
    for p in Path(directory).glob(f".*{TEMPORARY}*"):
        if p.is_file():
            p.unlink()
