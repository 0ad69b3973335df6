"""What the dataset readers share: the data.root folder and the checked archive download."""

from __future__ import annotations

from pathlib import Path

from ..config import DataConfig
from ..errors import DataError


def require_root(cfg: DataConfig, key: str) -> Path:
    """The dataset folder named by ``data.root``; an empty setting is the user's to fix."""
    if not cfg.root.strip():
        raise DataError(f"dataset {key} needs data.root: the folder holding its files.")
    return Path(cfg.root).expanduser()


def download_archive(url: str, root: Path, filename: str, md5: str, name: str) -> None:
    """Fetch and extract an official archive with torchvision's checked downloader.

    Only the download itself is torchvision's: its dataset classes read the pickles
    unrestricted, so reading stays with our readers.
    """
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        root.mkdir(parents=True, exist_ok=True)
        download_and_extract_archive(url, str(root), filename=filename, md5=md5)
    except (OSError, RuntimeError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise DataError(f"downloading {name} from {url} into {root} failed ({reason}).") from None
