"""Writing files so that a reader never sees one half-written and an old file survives a crash:
write next to the target under a temporary name, then rename over it (atomic on one file system)."""

import os
import tempfile
from pathlib import Path


def _temporary_beside(path, suffix=""):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    # mkstemp makes the file private (0600); the file it becomes should have the usual mode
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def write_text_atomic(path, text):
    tmp = _temporary_beside(path)
    try:
        Path(tmp).write_text(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model_atomic(model, path):
    """model.save(path) for a `.keras` file, through a temporary file in the same folder."""
    tmp = _temporary_beside(path, suffix=".keras")  # Keras picks the format from the suffix
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_figure_atomic(figure, path, **options):
    """figure.savefig(path) through a temporary file with the same suffix (matplotlib picks the
    format from it)."""
    tmp = _temporary_beside(path, suffix=Path(path).suffix)
    try:
        figure.savefig(tmp, **options)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
