"""Operating-system helpers of the fork server that keep heavy modules out of it."""

import os


def _rmtree(path):
    """Remove a tree, ignoring errors (shutil would load bz2, lzma and zlib into the server)."""
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            try:
                os.unlink(os.path.join(root, name))
            except OSError:
                pass
        for name in dirs:
            try:
                os.rmdir(os.path.join(root, name))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _uid_of(pid):
    """The real uid of a process, or None."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            uid_line = [ln for ln in f.read().split(b"\n") if ln.startswith(b"Uid:")]
        return int(uid_line[0].split()[1])
    except (OSError, IndexError, ValueError):
        return None
