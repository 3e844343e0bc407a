"""Where ML-1M, ML-10M, ML-20M and ML-25M are, and proof that a zip of them is intact.

These sets may not be redistributed and are large, so they are never bundled: each is
found unpacked or as GroupLens's zip on disk, or downloaded once into the cache as that
zip (`find_archive`, `download_movielens`). A zip is used only after its size and SHA-256
match GroupLens's archive (`verify_archive`); the files are then read straight from it.
An unpacked folder is the user's own copy and is read as it is: GroupLens publishes no
sums of the files inside the zips. Parsing the files is `bayesmf._movielens_formats`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bayesmf._movielens_files import cache_dir, fetch_verified, sha256_file
from bayesmf._validate import validate_choice

__all__ = ["ARCHIVES", "Archive", "Source", "download_movielens", "find_archive", "verify_archive"]

log = logging.getLogger("bayesmf")

_BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class Archive:
    """One GroupLens zip: its name, size, SHA-256 and the layout it unpacks to.

    Attributes
    ----------
    name : str
        The data set's name, also the zip's stem (``"ml-1m"`` -> ``ml-1m.zip``).
    folder : str
        The folder the zip unpacks to (``"ml-10M100K"`` for ml-10m).
    size : int or None
        The zip's size in bytes, checked before the SHA-256 (None: not checked).
    sha256 : str
        The zip's SHA-256 (hex).
    ratings, movies : str
        File names of the ratings and the movie titles inside ``folder``.
    movies_encoding : str
        Text encoding of ``movies``.
    scale : tuple of float
        ``(low, high)`` of the rating scale.
    """

    name: str
    folder: str
    size: int | None
    sha256: str
    ratings: str
    movies: str
    movies_encoding: str
    scale: tuple[float, float]

    @property
    def url(self) -> str:
        """GroupLens's download address of the zip."""
        return f"{_BASE_URL}/{self.name}.zip"

    @property
    def zip_name(self) -> str:
        """The zip's file name."""
        return f"{self.name}.zip"


def _archive(
    name: str,
    size: int | None,
    sha256: str,
    folder: str | None = None,
    dat: bool = False,
    encoding: str = "utf-8",
    low: float = 0.5,
) -> Archive:
    """Describe one zip: ``.dat`` files (ml-1m, ml-10m) or ``.csv`` ones, a scale up to 5."""
    ext = "dat" if dat else "csv"
    return Archive(
        name, folder or name, size, sha256, f"ratings.{ext}", f"movies.{ext}", encoding, (low, 5.0)
    )


# Sizes and SHA-256 sums of GroupLens's zips as stated in public sources (GroupLens itself
# publishes only MD5 sums, https://files.grouplens.org/datasets/movielens/<name>.zip.md5):
# - ml-1m, ml-20m, ml-25m: size and SHA-256 from tensorflow/datasets,
#   tensorflow_datasets/url_checksums/movielens.txt (its ml-100k line matches
#   ML100K_ZIP_SHA256); the same SHA-256 sums are in ISG-Siegen/OmniRec,
#   src/omnirec/data_loaders/movielens_small.py (ml-1m) and .../movielens_large.py (ml-20m,
#   ml-25m), whose DatasetInfo.checksum is documented as a SHA-256.
# - ml-10m: SHA-256 from ISG-Siegen/OmniRec, src/omnirec/data_loaders/movielens_small.py
#   (DatasetInfo of "MovieLens10M"); tensorflow/datasets has no ml-10m.
# GroupLens's MD5 sums, for a check by hand (as recorded in eli-osherovich/papers_with_code,
# datasets/movielens/dl_config.py): ml-1m c4d9eecfca2ab87c1945afe126590906, ml-10m
# ce571fd55effeba0271552578f2648bd, ml-20m cd245b17a1ae2cc31bb14903e1204af3, ml-25m
# 6b51fb2759a8657d3bfcbfc42b592ada.
ARCHIVES: dict[str, Archive] = {
    archive.name: archive
    for archive in (
        _archive(
            "ml-1m",
            5_917_549,
            "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            dat=True,
            encoding="latin-1",
            low=1.0,
        ),
        # no cited public source states ml-10m's size: its SHA-256 alone is checked
        _archive(
            "ml-10m",
            None,
            "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
            folder="ml-10M100K",
            dat=True,
        ),
        _archive(
            "ml-20m",
            198_702_078,
            "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
        ),
        _archive(
            "ml-25m",
            261_978_986,
            "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
        ),
    )
}


@dataclass(frozen=True)
class Source:
    """Where an archive's files are: an unpacked folder, or a zip already verified.

    Attributes
    ----------
    archive : Archive
        Which data set.
    path : pathlib.Path
        The folder holding ``ratings``/``movies``, or the zip.
    """

    archive: Archive
    path: Path

    def describe(self, filename: str) -> str:
        """Name ``filename`` as the user would find it (a path, or ``zip!member``)."""
        if self.path.is_dir():
            return str(self.path / filename)
        return f"{self.path}!{self.archive.folder}/{filename}"

    @contextlib.contextmanager
    def open(self, filename: str) -> Iterator[IO[bytes]]:
        """Open ``filename`` of the set for reading bytes, from the folder or the zip."""
        if self.path.is_dir():
            with (self.path / filename).open("rb") as handle:
                yield handle
            return
        with zipfile.ZipFile(self.path) as zf:
            try:
                member = zf.open(f"{self.archive.folder}/{filename}")
            except KeyError as exc:
                raise FileNotFoundError(f"{self.describe(filename)}: no such member") from exc
            with member:
                yield member


def verify_archive(path: Path, archive: Archive) -> None:
    """Check that the zip at ``path`` is GroupLens's (size, then SHA-256); never changes it.

    Raises
    ------
    ValueError
        The size or the SHA-256 differs; the message names ``path`` and says what to do.
    """
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        problem = f"{size:,} bytes, expected {archive.size:,}"
    else:
        digest = sha256_file(path)
        if digest == archive.sha256:
            return
        problem = f"SHA-256 {digest}, expected {archive.sha256}"
    raise ValueError(
        f"{path} is not GroupLens's {archive.zip_name} ({problem}): the copy is incomplete, "
        "damaged or modified. It was left as it is; delete it to have it downloaded again, "
        f"or pass data_dir= to a copy of {archive.url} you trust"
    )


def _look_in(directory: Path, archive: Archive, inner: bool = False) -> Source | None:
    """Find the set in ``directory``: unpacked (``folder/``, or itself if ``inner``), else zipped."""
    folders = [directory / archive.folder, *([directory] if inner else [])]
    for folder in folders:
        if (folder / archive.ratings).is_file():
            return Source(archive, folder)
    zipped = directory / archive.zip_name
    if zipped.is_file():
        verify_archive(zipped, archive)
        return Source(archive, zipped)
    return None


def find_archive(name: str, data_dir: str | os.PathLike[str] | None, download: bool) -> Source:
    """Find ``name`` (data_dir, $BAYESMF_DATA_DIR, cache) or download it into the cache.

    Parameters
    ----------
    name : str
        A key of `ARCHIVES`.
    data_dir : path, optional
        When given, the set must be there: ``<folder>/<ratings>``, ``<ratings>`` in
        ``data_dir`` itself, or ``<name>.zip`` (no fallback).
    download : bool
        Allow downloading when the set is found nowhere.

    Returns
    -------
    Source

    Raises
    ------
    FileNotFoundError
        Not in ``data_dir``, or found nowhere and ``download=False``.
    ValueError
        A zip found on the way does not match GroupLens's (it is left as it is).
    """
    archive = ARCHIVES[validate_choice("name", name, ARCHIVES)]
    if data_dir is not None:
        directory = Path(data_dir)
        found = _look_in(directory, archive, inner=True)
        if found is None:
            raise FileNotFoundError(
                f"{name} not found in data_dir={os.fspath(data_dir)!r}: expected "
                f"{directory / archive.folder / archive.ratings}, {directory / archive.ratings} "
                f"or {directory / archive.zip_name}"
            )
        return found
    env = os.environ.get("BAYESMF_DATA_DIR")
    if env:
        found = _look_in(Path(env), archive)
        if found is not None:
            return found
        log.info("BAYESMF_DATA_DIR=%s holds no %s; trying the cache", env, name)
    cache = cache_dir()
    found = _look_in(cache, archive)
    if found is not None:
        return found
    if not download:
        raise FileNotFoundError(
            f"{name} not found (looked in $BAYESMF_DATA_DIR and {cache}) and download=False; "
            f"download {archive.url} and pass data_dir=, or allow the download"
        )
    return Source(archive, download_movielens(name, cache))


def download_movielens(name: str, directory: str | os.PathLike[str] | None = None) -> Path:
    """Download ``<name>.zip`` from GroupLens into ``directory`` after checking its SHA-256.

    The zip goes to a temporary folder beside the target and its SHA-256 is checked; only
    then is it moved into place. A file already at the target is never replaced (it is
    checked instead). On any failure the temporary files are removed and nothing is left.

    Parameters
    ----------
    name : {"ml-1m", "ml-10m", "ml-20m", "ml-25m"}
        The data set.
    directory : path, optional
        Where to put the zip; default `bayesmf.movielens.cache_dir`.

    Returns
    -------
    pathlib.Path
        The zip, ``directory/<name>.zip``.

    Raises
    ------
    OSError
        The download failed.
    ValueError
        Unknown ``name``; the download, or a zip already at the target, does not match the
        SHA-256.
    """
    archive = ARCHIVES[validate_choice("name", name, ARCHIVES)]
    directory = Path(directory) if directory is not None else cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / archive.zip_name
    log.info("downloading %s into %s", archive.url, directory)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=directory))
    try:
        partial = work / archive.zip_name
        fetch_verified(archive.url, partial, archive.sha256)
        try:
            os.link(partial, target)  # fails if the target exists: never overwrites it
        except FileExistsError:
            verify_archive(target, archive)
        except OSError:  # no hard links on this file system
            if target.exists():
                verify_archive(target, archive)
            else:
                os.replace(partial, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)
