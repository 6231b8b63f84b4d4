"""Where a dataset's rows come from: a local file or folder, a Hugging Face hub spec
(``hf:<repo_id>[:<config>][@<revision>]``, loaded with the ``datasets`` library), or a release URL
(``https://...``, downloaded once into a cache and unpacked when it is an archive).

Both remote routes go through module-level hooks so tests can exercise them offline:
``HUB_LOADER(repo_id, config, split=..., revision=...)`` (default: the hub cache's snapshot, loaded with
``datasets.load_dataset``) and
``URL_OPENER(url)`` (default: ``urllib.request.urlopen``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from ._common import DataError, read_rows, split_file

HUB_PREFIX = "hf:"
URL_SCHEMES = ("https://", "http://", "file://")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".zip")


def is_hub(path) -> bool:
    return isinstance(path, str) and path.startswith(HUB_PREFIX)


def is_url(path) -> bool:
    return isinstance(path, str) and path.lower().startswith(URL_SCHEMES)


def parse_hub(spec: str, default_repo: str | None = None, default_config: str | None = None):
    """``hf:<repo_id>[:<config>][@<revision>]`` -> (repo_id, config, revision); a bare ``hf:`` means
    the dataset's default hub repository (and its default config)."""
    rest = spec[len(HUB_PREFIX) :].strip()
    revision = None
    if "@" in rest:
        rest, revision = rest.rsplit("@", 1)
    config = None
    if ":" in rest:
        rest, config = rest.split(":", 1)
    repo = rest.strip() or default_repo
    if not repo:
        raise DataError(f"'{spec}': this dataset has no default hub repository; write hf:<owner>/<name>")
    if not rest.strip() and config is None:
        config = default_config
    return repo, (config or None), (revision or None)


def _hub_load_dataset(
    repo_id: str, config: str | None = None, *, split: str | None = None, revision: str | None = None
):
    """The default ``HUB_LOADER``: the repository's snapshot in the hub cache (huggingface_hub's
    ``snapshot_download``: downloaded when online, found in the cache with ``HF_HUB_OFFLINE=1``, as every
    workflow job but the fetch step runs; gift.hub), loaded as a local folder with ``datasets.load_dataset``
    (the repository's own ``configs`` metadata names the files of each config and split)."""
    try:
        import datasets
        from huggingface_hub import snapshot_download
    except ImportError:
        raise DataError(
            f"hf:{repo_id}: loading from the Hugging Face hub needs the 'datasets' package "
            f"(pip install datasets), or point data.path at a local copy"
        ) from None
    folder = snapshot_download(repo_id, repo_type="dataset", revision=revision or "main")
    return datasets.load_dataset(folder, config, split=split)


HUB_LOADER = _hub_load_dataset


def _as_rows(ds) -> list[dict]:
    if isinstance(ds, list):
        return [dict(r) if not isinstance(r, dict) else r for r in ds]
    if hasattr(ds, "to_list"):  # datasets.Dataset
        return ds.to_list()
    if hasattr(ds, "keys") and hasattr(ds, "values"):  # DatasetDict (split=None): every split in order
        rows: list[dict] = []
        for part in ds.values():
            rows.extend(_as_rows(part))
        return rows
    return [dict(r) for r in ds]


def hub_rows(
    spec: str,
    split: str | None,
    *,
    default_repo: str | None = None,
    default_config: str | None = None,
    hub_split: str | None = None,
) -> tuple[str, list[dict]]:
    """-> (label for messages, rows) of one split of a hub dataset."""
    repo, config, revision = parse_hub(spec, default_repo, default_config)
    want = hub_split if hub_split is not None else split
    label = (
        f"hf:{repo}" + (f":{config}" if config else "") + (f"@{revision}" if revision else "") + f"[{want or 'all'}]"
    )
    try:
        ds = HUB_LOADER(repo, config, split=want, revision=revision)
    except DataError:
        raise
    except Exception as e:  # the hub is unreachable, the split does not exist, ...
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{label}: cannot load ({type(e).__name__}: {msg})") from e
    return label, _as_rows(ds)


# --------------------------------------------------------------------------- release URLs
def URL_OPENER(url: str):  # upper case: a replaceable hook (tests swap it)
    return urllib.request.urlopen(url, timeout=60)


def cache_dir() -> Path:
    return Path(os.environ.get("GIFT_DATA_CACHE") or Path.home() / ".cache" / "gift" / "datasets")


def fetch(url: str) -> Path:
    """Download ``url`` once into the cache (``$GIFT_DATA_CACHE``, default ``~/.cache/gift/datasets``)
    and return the local file, or the unpacked folder for an archive (its single top folder if it
    has one)."""
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    name = Path(urllib.parse.urlparse(url).path).name or "data"
    home = cache_dir() / key
    target = home / name
    unpacked = home / "unpacked"
    is_archive = name.lower().endswith(ARCHIVE_SUFFIXES)
    if is_archive and unpacked.is_dir():
        return _top(unpacked)
    if not target.is_file():
        home.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=home)
        try:
            with os.fdopen(fd, "wb") as out, URL_OPENER(url) as resp:
                shutil.copyfileobj(resp, out, 1 << 20)
            os.replace(tmp, target)
        except DataError:
            raise
        except Exception as e:
            raise DataError(f"{url}: download failed ({type(e).__name__}: {e})") from e
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    if not is_archive:
        return target
    tmpdir = Path(tempfile.mkdtemp(prefix=".unpack.", dir=home))
    try:
        if name.lower().endswith(".zip"):
            with zipfile.ZipFile(target) as z:
                for m in z.namelist():
                    if m.startswith("/") or ".." in Path(m).parts:
                        raise DataError(f"{url}: unsafe path in archive: {m}")
                z.extractall(tmpdir)
        else:
            with tarfile.open(target) as t:
                try:
                    t.extractall(tmpdir, filter="data")
                except TypeError:  # Python without extraction filters
                    for m in t.getmembers():
                        if m.name.startswith("/") or ".." in Path(m.name).parts or m.issym() or m.islnk():
                            raise DataError(f"{url}: unsafe member in archive: {m.name}") from None
                    t.extractall(tmpdir)
        if unpacked.exists():
            shutil.rmtree(unpacked)
        os.replace(tmpdir, unpacked)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{url}: cannot unpack {target} ({e})") from e
    finally:
        if tmpdir.exists():
            shutil.rmtree(tmpdir, ignore_errors=True)
    return _top(unpacked)


def _top(folder: Path) -> Path:
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def local_path(path) -> Path:
    """A local path for ``path``: URLs are fetched into the cache first."""
    if is_url(path):
        return fetch(path)
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such data file or folder")
    return p


def split_rows(
    path,
    split: str | None,
    *,
    default_repo: str | None = None,
    default_config: str | None = None,
    hub_split: str | None = None,
) -> tuple[Any, list[dict]]:
    """-> (label, rows) for the common layouts: a hub spec; a data file (holds the split, or the
    loader filters it); a folder with ``<split>.jsonl`` (or .jsonl.gz/.json/.json.gz/.parquet)."""
    if is_hub(path):
        return hub_rows(path, split, default_repo=default_repo, default_config=default_config, hub_split=hub_split)
    p = local_path(path)
    if p.is_dir():
        if not split:
            raise DataError(f"{p}: a folder needs a split name (its <split>.jsonl is read)")
        f = split_file(p, split)
        if f is None:
            raise DataError(f"{p}: no file for split '{split}' ({split}.jsonl, .jsonl.gz, .json, .json.gz or .parquet)")
        p = f
    return p, read_rows(p)
