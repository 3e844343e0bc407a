"""Where the MovieLens files are, and proof that they are intact.

``ml-latest-small`` ships with the package (`open_bundled`). ``ml-100k``, whose license
forbids redistribution, is found on disk or downloaded once into a cache (`find_ml100k`,
`download_ml100k`, `cache_dir`); every ml-100k file is checked against the SHA-256 sums
held here before it is used (`read_verified`). `fetch_verified` (download, then check the
SHA-256) and `sha256_file` also serve the larger sets (`bayesmf._movielens_archives`).
Reading the files into ratings is `bayesmf.movielens`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path
from typing import IO, Any

__all__ = [
    "ML100K_SHA256",
    "ML100K_URL",
    "ML100K_ZIP_SHA256",
    "ML_LATEST_SMALL_SHA256",
    "cache_dir",
    "download_ml100k",
    "fetch_verified",
    "find_ml100k",
    "open_bundled",
    "read_verified",
    "sha256_file",
]

log = logging.getLogger("bayesmf")

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
# SHA-256 of GroupLens's ml-100k.zip (4,924,029 bytes; its published MD5 is
# 0e33842e24a9c977be4e0107933c0723), as recorded by several independent projects.
ML100K_ZIP_SHA256 = "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
# SHA-256 of the extracted files (computed on a verified copy).
ML100K_SHA256 = {
    "README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u.info": "5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
    "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
    "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
    "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
    "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
}
# SHA-256 of the bundled ml-latest-small files (checked by the tests, not at load time).
ML_LATEST_SMALL_SHA256 = {
    "README.txt": "63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404",
    "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
    "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
}


@contextlib.contextmanager
def open_bundled(filename: str) -> Any:
    """Open a bundled ml-latest-small file (works from a wheel or a source tree)."""
    resource = resources.files("bayesmf") / "data" / "ml-latest-small" / filename
    with resource.open("rb") as handle:
        yield handle


def read_verified(root: Path, filename: str) -> bytes:
    """Read an ml-100k file, after checking it against the embedded SHA-256."""
    path = root / filename
    payload = path.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != ML100K_SHA256[filename]:
        raise ValueError(
            f"{path} does not match the published ml-100k file (SHA-256 {digest}, expected "
            f"{ML100K_SHA256[filename]}); the copy is damaged or modified: delete it so it "
            "can be downloaded again, or point data_dir at an intact copy"
        )
    return payload


def cache_dir() -> Path:
    """Return the directory where downloaded data sets are kept.

    ``$XDG_CACHE_HOME/bayesmf`` when ``XDG_CACHE_HOME`` is set, else ``~/.cache/bayesmf``.
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bayesmf"


def _layout(directory: Path) -> Path | None:
    """Find the folder holding ``u.data`` under ``directory`` (``ml-100k/`` or itself), or None."""
    for candidate in (directory / "ml-100k", directory):
        if (candidate / "u.data").is_file():
            return candidate
    return None


def find_ml100k(data_dir: str | os.PathLike[str] | None, download: bool) -> Path:
    """Find ml-100k (data_dir, $BAYESMF_DATA_DIR, cache) or download it into the cache."""
    if data_dir is not None:
        found = _layout(Path(data_dir))
        if found is None:
            raise FileNotFoundError(
                f"ml-100k not found in data_dir={os.fspath(data_dir)!r}: expected "
                f"{Path(data_dir) / 'ml-100k' / 'u.data'} or {Path(data_dir) / 'u.data'}"
            )
        return found
    env = os.environ.get("BAYESMF_DATA_DIR")
    if env:
        found = _layout(Path(env))
        if found is not None:
            return found
        log.info("BAYESMF_DATA_DIR=%s holds no ml-100k; trying the cache", env)
    cache = cache_dir()
    found = _layout(cache)
    if found is not None:
        return found
    if not download:
        raise FileNotFoundError(
            f"ml-100k not found (looked in $BAYESMF_DATA_DIR and {cache}) and download=False; "
            f"download {ML100K_URL} and pass data_dir=, or allow the download"
        )
    return download_ml100k(cache)


def _fetch(url: str, out: IO[bytes]) -> None:
    """Copy the body of ``url`` into the open binary file ``out`` (tests replace this)."""
    with urllib.request.urlopen(url, timeout=60) as response:
        shutil.copyfileobj(response, out)


def download_ml100k(directory: str | os.PathLike[str] | None = None) -> Path:
    """Download ml-100k from GroupLens, verify it, and unpack it into ``directory/ml-100k``.

    The zip goes to a temporary file beside the target and its SHA-256 is checked; the
    files are extracted into a temporary folder and each is checked against its SHA-256;
    only then is the folder moved into place (one atomic rename). On any failure the
    temporary files are removed and nothing is left in ``directory``.

    Parameters
    ----------
    directory : path, optional
        Where to put ``ml-100k/``; default `cache_dir`.

    Returns
    -------
    pathlib.Path
        The ``ml-100k`` folder.

    Raises
    ------
    OSError
        The download failed.
    ValueError
        The zip or a file in it does not match its SHA-256.
    """
    directory = Path(directory) if directory is not None else cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "ml-100k"
    log.info("downloading %s into %s", ML100K_URL, directory)
    work = Path(tempfile.mkdtemp(prefix=".ml-100k-", dir=directory))
    try:
        archive = work / "ml-100k.zip"
        fetch_verified(ML100K_URL, archive, ML100K_ZIP_SHA256)
        unpacked = work / "ml-100k"
        unpacked.mkdir()
        try:
            with zipfile.ZipFile(archive) as zf:
                for filename, expected in ML100K_SHA256.items():
                    # read known members only: no path from the archive is trusted
                    payload = zf.read(f"ml-100k/{filename}")
                    digest = hashlib.sha256(payload).hexdigest()
                    if digest != expected:
                        raise ValueError(
                            f"ml-100k/{filename} in the download does not match its SHA-256 "
                            f"({digest}, expected {expected}); nothing was kept"
                        )
                    (unpacked / filename).write_bytes(payload)
        except (zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(
                f"the downloaded {ML100K_URL} is not the ml-100k archive ({exc})"
            ) from exc
        try:
            os.replace(unpacked, target)
        except OSError:
            # another process finished first; keep its copy if it is whole
            if _layout(directory) is None:
                raise
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch_verified(url: str, archive: Path, sha256: str) -> None:
    """Download ``url`` into the new file ``archive`` and check its SHA-256 against ``sha256``.

    Raises ``OSError`` when the download fails and ``ValueError`` when the digest differs;
    either way the caller removes ``archive`` (it downloads into a temporary folder).
    """
    try:
        with archive.open("wb") as out:
            _fetch(url, out)
    except OSError as exc:
        raise OSError(
            f"could not download {url} ({exc}); download it by hand, unzip it and "
            "pass data_dir= (or set BAYESMF_DATA_DIR)"
        ) from exc
    digest = sha256_file(archive)
    if digest != sha256:
        raise ValueError(
            f"the downloaded {url} is corrupted or changed (SHA-256 {digest}, "
            f"expected {sha256}); nothing was kept, try again"
        )


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
