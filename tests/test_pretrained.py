"""Named weights: download from a local HTTP server, verify, cache, work offline, fail clearly."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest
import torch
from reference.official_swin import official_from_config

import swintrace
from swintrace import pretrained
from swintrace.cli import main
from swintrace.layouts import from_official


class _Server:
    """A static file server on 127.0.0.1 that counts its requests."""

    def __init__(self, folder):
        self.requests = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):  # noqa: N802 - the stdlib's name
                server.requests += 1
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A torchvision-layout teaching checkpoint served locally under its hash-prefixed name."""
    folder = tmp_path / "www"
    folder.mkdir()
    torch.manual_seed(41)
    reference = official_from_config(swintrace.VARIANTS["swin_teach"]).eval()
    staging = folder / "staging.pth"
    torch.save(from_official(reference.state_dict(), "torchvision"), staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    name = f"swin_teach-{digest[:8]}.pth"
    staging.rename(folder / name)
    server = _Server(folder)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    entry = pretrained.Pretrained("swin_teach", server.base + name, digest[:8], "local test server")
    monkeypatch.setitem(pretrained.PRETRAINED, "swin_teach", entry)
    yield server, reference, entry, tmp_path
    server.stop()


def test_download_verify_cache_and_reuse_offline(served):
    server, reference, entry, tmp_path = served
    model = swintrace.load_model("swin_teach", weights="swin_teach")
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / entry.filename
    assert cached.exists() and server.requests == 1
    assert model.weights_source["kind"] == "pretrained" and model.weights_source["url"] == entry.url
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(images), reference(images))
    server.stop()  # offline from now on
    again = swintrace.load_model("swin_teach", weights="swin_teach")
    assert torch.equal(again.head.weight, model.head.weight) and server.requests == 1


def test_hash_mismatch_leaves_nothing_behind(served, monkeypatch):
    server, _, entry, tmp_path = served
    monkeypatch.setitem(pretrained.PRETRAINED, "swin_teach",
                        pretrained.Pretrained("swin_teach", entry.url, "00000000", "tampered"))
    with pytest.raises(swintrace.UserError, match="does not match the expected 00000000"):
        swintrace.load_model("swin_teach", weights="swin_teach")
    folder = tmp_path / "torch_home" / "hub" / "checkpoints"
    assert list(folder.iterdir()) == []


def test_unpublished_hash_is_recorded_then_checked(served, monkeypatch):
    server, _, entry, tmp_path = served
    monkeypatch.setitem(pretrained.PRETRAINED, "swin_teach",
                        pretrained.Pretrained("swin_teach", entry.url, None, "no published hash"))
    path = pretrained.fetch("swin_teach", progress=False)
    recorded = path.with_name(path.name + ".sha256")
    assert recorded.read_text().strip() == hashlib.sha256(path.read_bytes()).hexdigest()
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # the cached file is damaged later
    with pytest.raises(swintrace.UserError, match="does not match"):
        pretrained.fetch("swin_teach", progress=False)


def test_offline_without_cache_names_the_url(served, capsys):
    server, _, entry, tmp_path = served
    server.stop()
    code = main(["run", "--weights", "swin_teach", "--input", "zeros", "--out", str(tmp_path / "t.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert entry.url in err[0] and "--weights PATH" in err[0]


def test_cli_picks_the_variant_of_named_weights(served, capsys):
    _, _, _, tmp_path = served
    out = tmp_path / "t.jsonl"
    assert main(["run", "--weights", "swin_teach", "--input", "zeros", "--out", str(out)]) == 0
    header = swintrace.load_trace(out).header
    assert header["model"]["variant"] == "swin_teach" and header["weights"]["kind"] == "pretrained"


def test_unknown_weights_name(tmp_path, capsys):
    code = main(["run", "--model", "swin_teach", "--weights", "swin_xxl", "--out", str(tmp_path / "t.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and "weights file not found: swin_xxl (named weights: swin_t," in err


def test_cache_dir_honours_torch_home_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert pretrained.cache_dir() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pretrained.cache_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
