"""Named pretrained ImageNet weights: download once into the torch cache, verify, reuse offline.

Files land in torch's checkpoint cache (``$TORCH_HOME/hub/checkpoints``, else
``$XDG_CACHE_HOME/torch/hub/checkpoints``, else ``~/.cache/torch/hub/checkpoints``),
so a file torchvision already downloaded is reused. Integrity: torchvision's file
names carry the first hex digits of their SHA-256, which are checked; for files
without a published hash the SHA-256 seen at the first download is recorded
beside the file (``.sha256``) and checked on every later use.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .weights import file_sha256

log = logging.getLogger(__name__)
_CHUNK = 1 << 20
_OFFICIAL = "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/"


@dataclass(frozen=True)
class Pretrained:
    """Where one variant's ImageNet-1k weights come from."""

    variant: str
    url: str
    # Leading hex digits of the file's SHA-256 (torch.hub's naming), if published.
    sha256_prefix: str | None
    source: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


PRETRAINED: dict[str, Pretrained] = {
    "swin_t": Pretrained("swin_t", "https://download.pytorch.org/models/swin_t-704ceda3.pth", "704ceda3",
                         "torchvision IMAGENET1K_V1 (acc@1 81.5)"),
    "swin_s": Pretrained("swin_s", "https://download.pytorch.org/models/swin_s-5e29d889.pth", "5e29d889",
                         "torchvision IMAGENET1K_V1 (acc@1 83.2)"),
    "swin_b": Pretrained("swin_b", "https://download.pytorch.org/models/swin_b-68c6b09e.pth", "68c6b09e",
                         "torchvision IMAGENET1K_V1 (acc@1 83.6)"),
    "swin_l": Pretrained("swin_l", _OFFICIAL + "swin_large_patch4_window7_224_22kto1k.pth", None,
                         "official, ImageNet-22k then 1k (acc@1 86.3)"),
    "swin_b_384": Pretrained("swin_b_384", _OFFICIAL + "swin_base_patch4_window12_384_22kto1k.pth", None,
                             "official, ImageNet-22k then 1k (acc@1 86.4)"),
    "swin_l_384": Pretrained("swin_l_384", _OFFICIAL + "swin_large_patch4_window12_384_22kto1k.pth", None,
                             "official, ImageNet-22k then 1k (acc@1 87.3)"),
}


def cache_dir() -> Path:
    """torch's checkpoint cache, honouring TORCH_HOME and XDG_CACHE_HOME."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        torch_home = os.path.join(xdg, "torch")
    return Path(torch_home) / "hub" / "checkpoints"


def fetch(name: str, progress: bool = True) -> Path:
    """The local path of the named weights, downloading and verifying them if needed."""
    if name not in PRETRAINED:
        raise UserError(f"unknown weights name {name!r}; named weights: {', '.join(PRETRAINED)}")
    entry = PRETRAINED[name]
    target = cache_dir() / entry.filename
    if target.exists():
        _verify(entry, target, file_sha256(target))
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{entry.filename}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            digest = _download(entry.url, stream, progress)
        _verify(entry, Path(temporary), digest)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if entry.sha256_prefix is None:
        target.with_name(target.name + ".sha256").write_text(digest + "\n")
    log.info("saved %s", target)
    return target


def _download(url: str, stream, progress: bool) -> str:
    """Stream ``url`` into ``stream``; returns the SHA-256 of what was written."""
    digest = hashlib.sha256()
    try:
        response = urllib.request.urlopen(url, timeout=60)  # noqa: S310 - fixed https URLs (or a test server)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise UserError(
            f"cannot download {url} ({reason}); download it yourself and pass --weights PATH"
        ) from None
    with response:
        total = int(response.headers.get("Content-Length") or 0) or None
        bar = _progress_bar(progress)
        with bar:
            task = bar.add_task(f"downloading {url.rsplit('/', 1)[-1]}", total=total)
            try:
                while chunk := response.read(_CHUNK):
                    stream.write(chunk)
                    digest.update(chunk)
                    bar.advance(task, len(chunk))
            except OSError as error:
                raise UserError(f"download of {url} broke off ({error}); try again") from None
    return digest.hexdigest()


def _progress_bar(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=console, disable=not (enabled and sys.stderr.isatty()), transient=True,
    )


def _verify(entry: Pretrained, path: Path, digest: str) -> None:
    expected = entry.sha256_prefix
    recorded = path.with_name(entry.filename + ".sha256")
    if expected is None and recorded.exists():
        expected = recorded.read_text().strip()
    if expected is not None and not digest.startswith(expected):
        raise UserError(
            f"{path.name}: SHA-256 {digest[:16]}… does not match the expected {expected[:16]}…; "
            f"delete {path} and download again"
        )
