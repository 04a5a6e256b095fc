"""The golden comparison itself: tolerant to another CPU's last digit and torch's module reprs, strict on structure."""

from __future__ import annotations

import pytest
import torch
from helpers import GOLDEN, as_running_torch_prints, golden_differences, join_numbers, split_numbers

GOLDEN_FILES = sorted(GOLDEN.glob("*.md"))


def _nudge(text: str, relative: float) -> str:
    """Every printed float moved by ``relative`` of its value, printed with all its digits."""
    structure, numbers = split_numbers(text)
    return join_numbers(structure, [repr(float(token) * (1 + relative)) for token in numbers])


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: path.name)
def test_numbers_nudged_by_a_millionth_still_match(path):
    text = path.read_text(encoding="utf-8")
    _, numbers = split_numbers(text)
    assert len(numbers) > 1000  # the goldens are full of printed floats
    assert golden_differences(text, _nudge(text, 1e-6)) == []
    assert golden_differences(text, _nudge(text, -1e-6)) == []


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda path: path.name)
def test_numbers_off_by_more_than_the_tolerance_fail(path):
    text = path.read_text(encoding="utf-8")
    differences = golden_differences(text, _nudge(text, 1e-2))
    _, numbers = split_numbers(text)
    # Every float whose nudge exceeds the tolerance is reported (tiny ones are within atol).
    assert len(differences) >= sum(abs(float(token)) > 0.1 for token in numbers) > 1000


@pytest.mark.parametrize(
    "change",
    [
        lambda text: text.replace("torch.Size([1, 3, 32, 32])", "torch.Size([1, 3, 32, 33])", 1),  # a shape
        lambda text: text.replace("# PatchEmbed", "# PatchMerging", 1),  # a heading
        lambda text: text.replace("x = self.proj(x)", "x = self.norm(x)", 1),  # a code line
        lambda text: text.replace("\n\n", "\n", 1),  # a line less
        lambda text: text.replace("[:3,:3,:3]", "[:3,:3]", 1),  # a slice index
        lambda text: text.replace("26,434", "26,435", 1),  # an integer
    ],
    ids=["shape", "heading", "code", "line", "index", "integer"],
)
def test_any_structural_change_fails(change):
    text = (GOLDEN / "teach_en.md").read_text(encoding="utf-8")
    changed = change(text)
    assert changed != text
    assert golden_differences(text, changed)


def test_sign_of_a_printed_zero_and_its_padding_do_not_matter():
    assert golden_differences("tensor([[ 0.0000, 1.5000]])", "tensor([[-0.0000, 1.5001]])") == []
    assert golden_differences("6.8409e-06", "6.8410e-06") == []
    assert golden_differences("5.0000e-03", "5.1000e-03")
    assert golden_differences("1.0000", "1.0003")
    assert golden_differences("layers.0.blocks.1 0.5", "layers.0.blocks.2 0.5")


def test_a_module_is_compared_as_the_running_torch_prints_it():
    """torch < 2.6 prints LayerNorm without ``bias=True``: a golden written by either torch matches the other."""
    printed = repr(torch.nn.LayerNorm(8))
    for golden in ("LayerNorm((8,), eps=1e-05, elementwise_affine=True)",
                   "LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)"):
        assert as_running_torch_prints(golden) == printed
        child = f"Mlp(\n  (norm): {golden}\n)"
        assert as_running_torch_prints(child) == f"Mlp(\n  (norm): {printed}\n)"
    # What is not a torch.nn module stays as it is; the module and its arguments stay structure.
    for text in ("DropPath(drop_prob=0.020)", "Mlp(", "x = self.norm(x)", "LayerNorm(8, eps=self.eps)"):
        assert as_running_torch_prints(text) == text
    assert golden_differences(as_running_torch_prints("LayerNorm((9,), eps=1e-05, elementwise_affine=True)"),
                              printed)
    assert golden_differences(as_running_torch_prints("Linear(in_features=8, out_features=8, bias=False)"),
                              repr(torch.nn.Linear(8, 8)))
