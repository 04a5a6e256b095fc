"""Named weights: download from a local HTTP server, verify, cache, work offline, fail clearly."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading

import pytest
import torch
from helpers import REPOSITORY, save_checkpoint
from reference.official_swin import official_from_config

import swintrace
from swintrace.checkpoints import pretrained
from swintrace.checkpoints.layouts import from_official
from swintrace.cli import main
from swintrace.images.prepare import EvalTransform


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
    save_checkpoint(from_official(reference.state_dict(), "torchvision"), staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    name = f"swin_teach-{digest[:8]}.pth"
    staging.rename(folder / name)
    server = _Server(folder)
    monkeypatch.delenv("SWINTRACE_OFFLINE")  # this server is on 127.0.0.1
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


def test_cache_dir_honours_torch_hub_set_dir_torch_home_and_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert pretrained.cache_dir() == tmp_path / "th" / "hub" / "checkpoints"
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pretrained.cache_dir() == tmp_path / "xdg" / "torch" / "hub" / "checkpoints"
    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)  # set_dir below is undone after the test
    torch.hub.set_dir(str(tmp_path / "chosen"))
    assert pretrained.cache_dir() == tmp_path / "chosen" / "checkpoints"


def _default_run(tmp_path, *extra):
    out = tmp_path / "walk.md"
    code = main(["run", "--model", "swin_teach", "--input", "zeros", "--no-pictures", "--out", str(out), *extra])
    return code, out


@pytest.mark.parametrize("how", ["offline switch", "server down"])
def test_default_weights_fall_back_to_random_with_one_warning(served, monkeypatch, capsys, how):
    server, _, entry, tmp_path = served
    if how == "offline switch":
        monkeypatch.setenv("SWINTRACE_OFFLINE", "1")
    else:
        server.stop()
    code, out = _default_run(tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0 and server.requests == 0
    assert len(err) == 2 and err[0].startswith("swintrace: warning: using seeded random weights")
    assert entry.url in err[0] and "--weights PATH" in err[0] and err[1].startswith("wrote ")
    report = out.read_text(encoding="utf-8")
    reason = "SWINTRACE_OFFLINE is set" if how == "offline switch" else "no network"
    assert f"because the pretrained swin_teach weights could not be had ({reason})" in report.split("\n", 3)[1]


def test_default_weights_are_the_named_ones_when_they_can_be_had(served, capsys):
    server, reference, _, tmp_path = served
    code, out = _default_run(tmp_path)
    assert code == 0 and server.requests == 1
    assert "**Weights**: pretrained swin_teach: local test server" in out.read_text(encoding="utf-8")
    code, _ = _default_run(tmp_path, "--weights", "random")
    assert code == 0 and server.requests == 1 and "warning" not in capsys.readouterr().err


def test_a_missing_image_fails_before_any_download(served, capsys):
    server, _, _, tmp_path = served
    code = main(["run", "--model", "swin_teach", "--image", str(tmp_path / "nope.jpg"), "--out", str(tmp_path / "r.md")])
    assert code == 2 and "image not found" in capsys.readouterr().err and server.requests == 0


def test_a_silent_server_is_given_up_quickly(monkeypatch, tmp_path):
    """A host that accepts the connection and never answers (a firewall, a hung proxy) is not waited for."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    monkeypatch.delenv("SWINTRACE_OFFLINE")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(pretrained, "CONNECT_TIMEOUT", 0.5)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/silent.pth"
    monkeypatch.setitem(pretrained.PRETRAINED, "swin_teach", pretrained.Pretrained("swin_teach", url, None, "silent"))
    try:
        with pytest.raises(pretrained.WeightsUnavailable, match="within 0 s|within 1 s") as raised:
            pretrained.fetch("swin_teach", progress=False)
        assert raised.value.reason == "network"
        model = swintrace.load_model("swin_teach", weights="pretrained")
        assert model.weights_source == {"kind": "random", "seed": 0, "wanted": "swin_teach", "unavailable": "network"}
    finally:
        listener.close()
    assert list((tmp_path / "hub" / "checkpoints").iterdir()) == []


@pytest.mark.parametrize(
    ("variant", "weights", "size", "crop", "expected"),
    [
        ("swin_t", {"kind": "random", "wanted": "swin_t"}, 224, True, EvalTransform(232, 224)),  # torchvision's Swin-T
        ("swin_s", {"kind": "pretrained", "name": "swin_s"}, 224, True, EvalTransform(246, 224)),
        ("swin_b", {"kind": "pretrained", "name": "swin_b"}, 224, True, EvalTransform(238, 224)),
        ("swin_l", {"kind": "pretrained", "name": "swin_l"}, 224, True, EvalTransform(256, 224)),  # official: 256/224
        ("swin_b_384", {"kind": "pretrained", "name": "swin_b_384"}, 384, True,
         EvalTransform(384, None, square=True)),  # official 384: no crop
        ("swin_t", {"kind": "random", "seed": 0}, 224, True, EvalTransform(256, 224)),  # no weights: the standard one
        ("swin_t", {"kind": "random", "wanted": "swin_t"}, 160, True, EvalTransform(182, 160)),  # another size
        ("swin_t", {"kind": "random", "wanted": "swin_t"}, 224, False, EvalTransform(224, None)),
    ],
)
def test_each_named_weight_brings_its_own_eval_transform(variant, weights, size, crop, expected):
    """``transform_for(model)``, which ``run`` uses too (``--size``, ``--no-crop``): the model's named weights
    decide, also those it asked for when they could not be had (offline here)."""
    from swintrace.api.inputs import make_input
    from swintrace.images.prepare import open_image

    with torch.device("meta"):  # the transform reads the model's names, not its numbers
        model = swintrace.SwinTransformer(swintrace.VARIANTS[variant], variant=variant)
    model.weights_source = weights
    if crop:
        assert swintrace.transform_for(model, size) == expected
    _, described = make_input(model, open_image(REPOSITORY / "examples" / "cat.jpg"), "zeros", 0, size, crop=crop)
    assert described["transform"] == expected.to_dict()
