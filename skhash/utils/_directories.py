"""Directories written whole or not at all: written under a temporary name
beside their place, then renamed into it (saved indexes, one machine's and
Dask's)."""

import json
import os
import shutil
import uuid

METADATA = "metadata.json"


def refused(directory, reason):
    """The error of a saved directory that cannot be reopened, and why."""
    return ValueError(f"The saved index in {directory} is refused: {reason}.")


def skhash_version():
    from .. import __version__  # not at import: skhash imports this module

    return __version__


def write_metadata(directory, metadata, default=None):
    """Write ``metadata.json`` into ``directory``, flushed to the disk (the
    last part of a saved directory: ``json.dump``'s ``default`` for values
    JSON has no type for)."""
    with open(os.path.join(directory, METADATA), "w") as file:
        json.dump(metadata, file, indent=1, default=default)
        sync(file)


def read_metadata(directory, format, version, what):
    """The ``metadata.json`` of a saved ``what`` (its ``"format"``), or
    :func:`refused` if there is none, or of another format or version."""
    if not os.path.isdir(directory):
        raise refused(directory, "it is not a directory")
    try:
        with open(os.path.join(directory, METADATA), encoding="utf-8") as file:
            metadata = json.load(file)
        if not isinstance(metadata, dict) or metadata.get("format") != format:
            raise ValueError(f"it is not a saved {what}")
    except FileNotFoundError as error:
        raise refused(directory, f"{METADATA} is missing") from error
    except (OSError, ValueError) as error:
        raise refused(directory, f"{METADATA} is unreadable ({error})") from error
    saved = metadata.get("format_version")
    if saved != version:
        raise refused(
            directory,
            f"its format version is {saved!r}; skhash {skhash_version()} reads "
            f"version {version} (saved by skhash {metadata.get('skhash_version')})",
        )
    return metadata


def sync(file):
    """Flush a file open for writing to the disk."""
    file.flush()
    os.fsync(file.fileno())


def check_replaceable(directory, format):
    """Refuse to replace anything but a saved directory of ``format`` (the
    ``"format"`` of its ``metadata.json``)."""
    if not os.path.lexists(directory):
        return
    try:
        with open(os.path.join(directory, METADATA), encoding="utf-8") as file:
            is_index = json.load(file).get("format") == format
    except (OSError, ValueError, AttributeError):
        is_index = False
    if not is_index or os.path.islink(directory):
        raise FileExistsError(
            f"{directory} exists and is not a saved index: it is not replaced."
        )


def swap_in(temporary, directory):
    """Rename the complete temporary directory to ``directory``, replacing a
    saved index there: at every moment the path holds a whole index or
    nothing."""
    old = None
    if os.path.lexists(directory):
        old = new_directory(directory, "replaced")
        os.replace(directory, os.path.join(old, "index"))
    try:
        os.rename(temporary, directory)
    except OSError:
        if old is not None:  # the old index back in its place
            os.replace(os.path.join(old, "index"), directory)
            os.rmdir(old)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    if os.name == "posix":  # the renames themselves, durable
        descriptor = os.open(os.path.dirname(directory), os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def new_directory(beside, purpose):
    """A new hidden directory next to ``beside``, with the permissions the
    umask gives (``tempfile.mkdtemp`` would make it private)."""
    parent, name = os.path.split(beside)
    path = os.path.join(parent, f".{name}.{uuid.uuid4().hex[:12]}.{purpose}")
    os.mkdir(path)
    return path
