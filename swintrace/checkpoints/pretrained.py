"""Named pretrained ImageNet weights: download once into torch's hub cache, verify, reuse offline.

Files land where torch.hub keeps checkpoints (``torch.hub.get_dir()/checkpoints``:
``torch.hub.set_dir`` or ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``,
else ``~/.cache/torch/hub``), so a file torchvision already downloaded is reused.

Integrity. torchvision publishes the first hex digits of each file's SHA-256
in its name; they are checked. No publisher gives the full SHA-256 of these
files, so the one seen at the first download is recorded beside the file
(``<name>.sha256``) and every later use checks it (trust on first use).

Network. ``SWINTRACE_OFFLINE=1`` keeps every command off the network: only
cached files are used. Otherwise opening the connection (name lookup, proxy,
TLS, response headers) must finish within ``CONNECT_TIMEOUT`` seconds and each
read within ``READ_TIMEOUT``: a firewalled machine is told at once, never left
hanging. Standard proxy variables (``https_proxy``, ``no_proxy``) are honoured
by urllib. torch.hub's own downloader would fit but has no timeout, and a
process-wide socket timeout would change every other connection of the
process: this module opens the connection itself, with its own timeouts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, Any, cast

from ..errors import UserError
from ..images.prepare import EvalTransform
from ..images.shapes import CLASSES, WEIGHTS_NAME
from .weights import file_sha256

log = logging.getLogger(__name__)
_CHUNK = 1 << 20
_OFFICIAL = "https://github.com/SwinTransformer/storage/releases/download/v1.0.0/"
_OFFICIAL_V2 = "https://github.com/SwinTransformer/storage/releases/download/v2.0.0/"
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
OFFLINE_VARIABLE = "SWINTRACE_OFFLINE"


@dataclass(frozen=True)
class Pretrained:
    """Where one variant's ImageNet-1k weights come from, and how they were evaluated."""

    variant: str
    url: str
    # Leading hex digits of the file's SHA-256 (torch.hub's naming), if published.
    sha256_prefix: str | None
    source: str
    # The evaluation transform the published accuracy was measured with.
    transform: EvalTransform = EvalTransform(256, 224)
    # Weights shipped inside the package (a path under swintrace/), never downloaded.
    packaged: str | None = None
    # Names of the classes, index by index; None: ImageNet's (or "class N").
    labels: tuple[str, ...] | None = None

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


PRETRAINED: dict[str, Pretrained] = {
    "swin_t": Pretrained("swin_t", "https://download.pytorch.org/models/swin_t-704ceda3.pth", "704ceda3",
                         "torchvision IMAGENET1K_V1 (acc@1 81.5)", EvalTransform(232, 224)),
    "swin_s": Pretrained("swin_s", "https://download.pytorch.org/models/swin_s-5e29d889.pth", "5e29d889",
                         "torchvision IMAGENET1K_V1 (acc@1 83.2)", EvalTransform(246, 224)),
    "swin_b": Pretrained("swin_b", "https://download.pytorch.org/models/swin_b-68c6b09e.pth", "68c6b09e",
                         "torchvision IMAGENET1K_V1 (acc@1 83.6)", EvalTransform(238, 224)),
    "swin_l": Pretrained("swin_l", _OFFICIAL + "swin_large_patch4_window7_224_22kto1k.pth", None,
                         "official, ImageNet-22k then 1k (acc@1 86.3)", EvalTransform(256, 224)),
    "swin_b_384": Pretrained("swin_b_384", _OFFICIAL + "swin_base_patch4_window12_384_22kto1k.pth", None,
                             "official, ImageNet-22k then 1k (acc@1 86.4)", EvalTransform(384, None, square=True)),
    "swin_l_384": Pretrained("swin_l_384", _OFFICIAL + "swin_large_patch4_window12_384_22kto1k.pth", None,
                             "official, ImageNet-22k then 1k (acc@1 87.3)", EvalTransform(384, None, square=True)),
    "swin_v2_t": Pretrained("swin_v2_t", "https://download.pytorch.org/models/swin_v2_t-b137f0e2.pth", "b137f0e2",
                            "torchvision IMAGENET1K_V1 (acc@1 82.1)", EvalTransform(260, 256)),
    "swin_v2_s": Pretrained("swin_v2_s", "https://download.pytorch.org/models/swin_v2_s-637d8ceb.pth", "637d8ceb",
                            "torchvision IMAGENET1K_V1 (acc@1 83.7)", EvalTransform(260, 256)),
    "swin_v2_b": Pretrained("swin_v2_b", "https://download.pytorch.org/models/swin_v2_b-781e5279.pth", "781e5279",
                            "torchvision IMAGENET1K_V1 (acc@1 84.1)", EvalTransform(272, 256)),
    "swin_v2_t_w16": Pretrained("swin_v2_t_w16", _OFFICIAL_V2 + "swinv2_tiny_patch4_window16_256.pth", None,
                                "official, ImageNet-1k (acc@1 82.8)", EvalTransform(292, 256)),
    "swin_v2_s_w16": Pretrained("swin_v2_s_w16", _OFFICIAL_V2 + "swinv2_small_patch4_window16_256.pth", None,
                                "official, ImageNet-1k (acc@1 84.1)", EvalTransform(292, 256)),
    "swin_v2_b_w16": Pretrained("swin_v2_b_w16", _OFFICIAL_V2 + "swinv2_base_patch4_window16_256.pth", None,
                                "official, ImageNet-1k (acc@1 84.6)", EvalTransform(292, 256)),
    # Trained by `python -m swintrace.train_teach` on the shapes data set (shapes.py); the
    # record beside the file (teach_shapes.json) holds its seeds, settings and accuracy.
    WEIGHTS_NAME: Pretrained("swin_teach", "", None, "swintrace's shapes data set, 10 classes (held-out acc 94.3 %)",
                               EvalTransform(32, None, square=True), packaged=f"data/weights/{WEIGHTS_NAME}.safetensors",
                               labels=CLASSES),
    # Its Swin V2 twin, trained the same way: `python -m swintrace.train_teach --model swin_v2_teach`.
    f"{WEIGHTS_NAME}_v2": Pretrained("swin_v2_teach", "", None,
                                     "swintrace's shapes data set, 10 classes (held-out acc 90.4 %)",
                                     EvalTransform(32, None, square=True),
                                     packaged=f"data/weights/{WEIGHTS_NAME}_v2.safetensors", labels=CLASSES),
}


def default_weights(variant: str) -> str | None:
    """The name of the weights ``--weights pretrained`` means for ``variant``, if any: those named
    after it (the ImageNet ones), else the first for it (swin_teach's teach_shapes)."""
    if variant in PRETRAINED:
        return variant
    return next((name for name, entry in PRETRAINED.items() if entry.variant == variant), None)


class WeightsUnavailable(UserError):
    """Named weights that are neither cached nor downloadable now (offline, firewall, server down)."""

    def __init__(self, message: str, reason: str = "network", *, key: str | None = None,
                 values: dict[str, Any] | None = None) -> None:
        super().__init__(message, key=key, values=values)
        # "offline" (SWINTRACE_OFFLINE is set) or "network" (the download failed)
        self.reason = reason

    @classmethod
    def of(cls, key: str, /, *, reason: str = "network", **values: Any) -> WeightsUnavailable:
        """The catalog's error ``errors.<key>`` (see ``UserError.of``), for ``reason``."""
        error = cast(WeightsUnavailable, super().of(key, **values))
        error.reason = reason
        return error


def offline() -> bool:
    """Whether SWINTRACE_OFFLINE asks every command to stay off the network."""
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def cache_dir() -> Path:
    """torch.hub's checkpoint folder (honours torch.hub.set_dir, TORCH_HOME and XDG_CACHE_HOME)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def entry(name: str) -> Pretrained:
    if name not in PRETRAINED:
        raise UserError.of("unknown_weights", name=repr(name), names=", ".join(PRETRAINED))
    return PRETRAINED[name]


def fetch(name: str, progress: bool = True) -> Path:
    """The local path of the named weights, downloading and verifying them if needed.

    Raises WeightsUnavailable when they are not cached and cannot be downloaded now.
    """
    wanted = entry(name)
    if wanted.packaged is not None:
        return Path(str(resources.files("swintrace").joinpath(wanted.packaged)))
    target = cache_dir() / wanted.filename
    if target.exists():
        _verify(wanted, target, file_sha256(target))
        return target
    if offline():
        raise WeightsUnavailable.of("weights_offline", reason="offline", name=name, folder=target.parent,
                                    variable=OFFLINE_VARIABLE, url=wanted.url)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{wanted.filename}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            digest = _download(wanted.url, stream, progress)
        _verify(wanted, Path(temporary), digest)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    target.with_name(target.name + ".sha256").write_text(digest + "\n")
    log.info("saved %s (SHA-256 %s recorded beside it)", target, digest[:16])
    return target


def _open_url(url: str) -> Any:
    """The response to GET ``url``, opened within CONNECT_TIMEOUT seconds (name lookup included).

    urllib's own timeout bounds each socket operation but not the name lookup,
    so the opening runs in a helper thread that is abandoned when late.
    """
    outcome: dict[str, Any] = {}

    def open_it() -> None:
        try:
            outcome["response"] = urllib.request.urlopen(url, timeout=READ_TIMEOUT)  # noqa: S310 - fixed URLs
        except BaseException as error:  # handed to the caller
            outcome["error"] = error

    opener = threading.Thread(target=open_it, name="swintrace-download", daemon=True)
    opener.start()
    opener.join(CONNECT_TIMEOUT)
    if opener.is_alive():
        raise WeightsUnavailable.of("download_timeout", reason="network", url=url,
                                    seconds=f"{CONNECT_TIMEOUT:.0f}")
    error = outcome.get("error")
    if error is not None:
        reason = getattr(error, "reason", None) or error
        raise WeightsUnavailable.of("download_failed", reason="network", url=url, why=reason)
    return outcome["response"]


def _download(url: str, stream: IO[bytes], progress: bool) -> str:
    """Stream ``url`` into ``stream``; returns the SHA-256 of what was written."""
    digest = hashlib.sha256()
    response = _open_url(url)
    with response:
        total = int(response.headers.get("Content-Length") or 0) or None
        size = f"{total / 2**20:.1f} MiB" if total else "size unknown"
        log.info("downloading %s (%s) into %s", url, size, cache_dir())
        bar = _progress_bar(progress)
        with bar:
            task = bar.add_task(f"downloading {url.rsplit('/', 1)[-1]}", total=total)
            try:
                while chunk := response.read(_CHUNK):
                    stream.write(chunk)
                    digest.update(chunk)
                    bar.advance(task, len(chunk))
            except OSError as error:
                raise WeightsUnavailable.of("download_broke_off", reason="network", url=url,
                                            why=error) from None
    return digest.hexdigest()


def _progress_bar(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        console=console, disable=not (enabled and sys.stderr.isatty()), transient=True,
    )


def _verify(wanted: Pretrained, path: Path, digest: str) -> None:
    """The published hash prefix, and the full hash recorded at the first download, must match."""
    recorded = path.with_name(wanted.filename + ".sha256")
    for expected in (wanted.sha256_prefix, recorded.read_text().strip() if recorded.exists() else None):
        if expected is not None and not digest.startswith(expected):
            raise UserError.of("weights_hash_mismatch", name=path.name, digest=digest[:16],
                               expected=expected[:16], path=path)
