"""Checkpoints: official files load and give the same logits; unsafe or wrong files are refused."""

from __future__ import annotations

import pickle

import pytest
import torch
from helpers import save_checkpoint
from reference.official_swin import official_from_config
from safetensors.torch import save_file

import swintrace
from swintrace.cli import main


@pytest.fixture(scope="module")
def official_teach():
    config = swintrace.VARIANTS["swin_teach"]
    torch.manual_seed(21)
    return official_from_config(config).eval()


def test_official_checkpoint_loads_with_its_buffers_ignored(official_teach, tmp_path):
    path = tmp_path / "swin_teach.pth"
    save_checkpoint({"model": official_teach.state_dict(), "epoch": 300}, path)
    model = swintrace.load_model("swin_teach", weights=path)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert (model(images) - official_teach(images)).abs().max().item() <= 1e-6
    assert model.weights_source["kind"] == "file" and len(model.weights_source["sha256"]) == 64


def test_safetensors_checkpoint(official_teach, tmp_path):
    path = tmp_path / "swin_teach.safetensors"
    save_file({k: v.contiguous() for k, v in official_teach.state_dict().items() if v is not None}, path)
    model = swintrace.load_model("swin_teach", weights=path)
    assert torch.equal(model.head.weight, official_teach.head.weight)


def test_wrong_variant_names_the_keys(official_teach, tmp_path):
    path = tmp_path / "teach.pth"
    save_checkpoint(official_teach.state_dict(), path)
    with pytest.raises(swintrace.UserError, match=r"does not fit swin_t: .*wrong shape: patch_embed.proj.weight"):
        swintrace.load_model("swin_t", weights=path)


class _Hostile:
    def __reduce__(self):
        import os

        return (os.system, ("touch HACKED",))


def test_hostile_pickle_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with path.open("wb") as stream:
        pickle.dump({"model": _Hostile()}, stream)
    with pytest.raises(swintrace.UserError, match="refused to load"):
        swintrace.load_model("swin_teach", weights=path)
    assert not (tmp_path / "HACKED").exists()


@pytest.mark.parametrize("content", [b"", b"\x00\x01random bytes\xff" * 50, b"just text\n"])
def test_garbage_checkpoints_are_one_line_errors(tmp_path, capsys, content):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    code = main(["run", "--model", "swin_teach", "--weights", str(path), "--out", str(tmp_path / "t.jsonl")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "junk.pth" in err[0]


def test_directory_as_weights(tmp_path):
    with pytest.raises(swintrace.UserError, match="is a directory"):
        swintrace.load_model("swin_teach", weights=tmp_path)
