"""Labs: swintrace.check says "right" for right pieces and names each kind of mistake (issue #31)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

import swintrace
from swintrace.models import windows as official

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
LAB = NOTEBOOKS / "lab.ipynb"
_spec = importlib.util.spec_from_file_location("lab_solutions", NOTEBOOKS / "lab_solutions.py")
solutions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(solutions)

PARTITION = "layers.0.blocks.0.window_partition"
REVERSE = "layers.0.blocks.0.window_reverse"
INDEX = "layers.0.blocks.0.attn.bias_gather"
SHIFT = "layers.0.blocks.1.cyclic_shift"
ATTENTION = "layers.0.blocks.1.attn.softmax"


def _partition(order=(0, 1, 3, 2, 4, 5)):
    def partition(x, M):
        B, H, W, C = x.shape
        return x.view(B, H // M, M, W // M, M, C).permute(*order).reshape(-1, M, M, C)
    return partition


def _index(rows=1, columns=1, shift=True, stride=None, swap=False):
    def index(M):
        coords = torch.stack(torch.meshgrid(torch.arange(M), torch.arange(M), indexing="ij")).flatten(1)  # 2, N
        dy, dx = (rows * (coords[:, :, None] - coords[:, None, :]))  # N, N each
        dy, dx = (dy + M - 1, dx + M - 1) if shift else (dy, dx)
        if swap:
            dy, dx = dx, dy
        return dy * (stride or 2 * M - 1) + dx
    return index


def _shift(roll=None, regions=None, mask=None, outputs=3):
    def shift_and_mask(x, M, s):
        shifted, ids, made = solutions.shift_and_mask(x, M, s)
        if roll is not None:
            shifted = torch.roll(x, shifts=roll(s), dims=(1, 2))
        if regions is not None:
            ids = regions(ids)
            windows = ids.view(ids.shape[0] // M, M, -1, M).permute(0, 2, 1, 3).reshape(-1, M * M)  # nW, N
            made = torch.zeros(made.shape).masked_fill(windows[:, None, :] != windows[:, :, None], -100.0)
        if mask is not None:
            made = mask(made)
        return (shifted, ids, made)[:outputs]
    return shift_and_mask


def _attention(scale=None, bias=lambda b: b, mask=lambda m: m, dim=-1, softmax=True):
    def attention(q, k, v, b, m):
        d = q.shape[-1]
        scores = (q * (d**-0.5 if scale is None else scale(d))) @ k.transpose(-2, -1) + bias(b)
        m = mask(m) if m is not None else None
        if m is not None:
            scores = (scores.view(-1, m.shape[0], *scores.shape[1:]) + m[None, :, None]).view(scores.shape)
        return scores.softmax(dim) if softmax else scores
    return attention


RIGHT = [
    (solutions.window_partition, PARTITION), (official.window_partition, PARTITION),
    (official.window_partition, "layers.0.create_mask.window_partition"),
    (solutions.window_reverse, REVERSE), (official.window_reverse, "layers.1.blocks.1.window_reverse"),
    (solutions.relative_position_index, INDEX), (official.relative_position_index, "layers.2.blocks.0.attn.bias_gather"),
    (solutions.shift_and_mask, SHIFT), (solutions.shift_and_mask, "layers.1.blocks.1.cyclic_shift"),
    (solutions.window_attention, ATTENTION), (solutions.window_attention, "layers.0.blocks.0.attn.softmax"),
]


@pytest.mark.parametrize(("function", "step"), RIGHT, ids=[f"{f.__module__.split('.')[-1]}-{s}" for f, s in RIGHT])
def test_right_pieces_are_right(function, step):
    result = swintrace.check(function, step)
    assert result.right and result.key == "right" and str(result).startswith("Right: your ")
    assert bool(result) and step in repr(result)


def _not_implemented(*arguments):
    raise NotImplementedError("write this piece")


# Every diagnosis, produced by a deliberately broken piece of that kind.
MISTAKES = [
    ("raised", PARTITION, _not_implemented),
    ("not_tensor", PARTITION, lambda x, M: solutions.window_partition(x, M).tolist()),
    ("outputs", SHIFT, _shift(outputs=2)),
    ("shape", PARTITION, lambda x, M: solutions.window_partition(x, M)[..., :4]),
    ("reshape", PARTITION, lambda x, M: solutions.window_partition(x, M).view(1, 16, M, M, -1)),
    ("transposed", PARTITION, _partition((0, 1, 3, 4, 2, 5))),
    ("transposed", REVERSE, lambda w, M, H, W: solutions.window_reverse(w, M, H, W).transpose(1, 2)),
    ("window_columns", PARTITION, _partition((0, 3, 1, 2, 4, 5))),
    ("window_order", PARTITION, lambda x, M: solutions.window_partition(x, M).flip(0)),
    ("no_permute", PARTITION, lambda x, M: x.reshape(-1, M, M, x.shape[-1])),
    ("no_permute", REVERSE, lambda w, M, H, W: w.reshape(-1, H, W, w.shape[-1])),
    ("values", REVERSE, lambda w, M, H, W: solutions.window_reverse(w, M, H, W).index_add(1, torch.tensor([2]), torch.ones(1, 1, W, w.shape[-1]))),
    ("dtype", INDEX, lambda M: solutions.relative_position_index(M).float()),
    ("index_transposed", INDEX, _index(rows=-1)),
    ("index_no_shift", INDEX, _index(shift=False)),
    ("index_stride", INDEX, _index(stride=2)),
    ("index_axes", INDEX, _index(swap=True)),
    ("not_shifted", SHIFT, _shift(roll=lambda s: (0, 0))),
    ("shift_direction", SHIFT, _shift(roll=lambda s: (s, s))),
    ("rolled", SHIFT, _shift(roll=lambda s: (-s, 0))),
    ("mask_inf", SHIFT, _shift(mask=lambda m: m.masked_fill(m != 0, float("-inf")))),
    ("mask_sign", SHIFT, _shift(mask=lambda m: -m)),
    ("mask_inverted", SHIFT, _shift(mask=lambda m: torch.where(m == 0, -100.0, 0.0))),
    ("right_relabelled", SHIFT, _shift(regions=lambda ids: 8 - ids.T)),  # numbered from the other corner, by column
    ("no_scale", ATTENTION, _attention(scale=lambda d: 1.0)),
    ("scale_dim", ATTENTION, _attention(scale=lambda d: 1.0 / d)),
    ("no_bias", ATTENTION, _attention(bias=lambda b: 0)),
    ("bias_transposed", ATTENTION, _attention(bias=lambda b: b.transpose(-2, -1))),
    ("no_mask", ATTENTION, _attention(mask=lambda m: None)),
    ("mask_subtracted", ATTENTION, _attention(mask=lambda m: -m)),
    ("softmax_dim", ATTENTION, _attention(dim=-2)),
    ("no_softmax", ATTENTION, _attention(softmax=False)),
]


@pytest.mark.parametrize(("key", "step", "function"), MISTAKES, ids=[f"{key}-{step.split('.')[-1]}" for key, step, _ in MISTAKES])
def test_each_mistake_gets_its_diagnosis(key, step, function):
    result = swintrace.check(function, step)
    assert result.key == key, result.text
    assert result.right == key.startswith("right")
    chinese = swintrace.check(function, step, lang="zh")
    assert chinese.key == key and chinese.text != result.text
    assert "{" not in result.text + chinese.text and len(chinese.text) > 20
    if key == "right_relabelled":
        assert "just as right" in result.text and "which region ids are equal" in result.text


def test_every_diagnosis_of_the_catalog_is_tested():
    from swintrace.words import catalog

    keys = {key for key, value in catalog("en")["labs"].items() if isinstance(value, str)}
    keys -= {"separator", "which", "which_missing", "right"}
    assert keys == {key for key, _, _ in MISTAKES}


def test_the_diagnosis_names_dimensions_and_values(tmp_path):
    shape = swintrace.check(lambda x, M: solutions.window_partition(x, M)[..., :4], PARTITION)
    assert "(16, 2, 2, 4)" in shape.text and "channels: yours 4, the model's 8" in shape.text
    moved = swintrace.check(_partition((0, 1, 3, 4, 2, 5)), PARTITION, lang="zh")
    assert "(window, 列, 行, 通道)" in moved.text
    rolled = swintrace.check(_shift(roll=lambda s: (-s, 0)), SHIFT)
    assert "rolled by 0 along the rows and 1 along the columns" in rolled.text
    wrong = swintrace.check(lambda w, M, H, W: solutions.window_reverse(w, M, H, W) * 2, REVERSE)
    assert wrong.key == "values" and re.search(r"the first at \[0, 0, 0, \d\]: yours", wrong.text)
    assert wrong._repr_html_().startswith('<p class="swintrace-check"')


def test_check_traces_the_model_and_image_it_is_given():
    model = swintrace.load_model("swin_teach", window_size=4, depths=(2, 2), num_heads=(2, 2))
    images = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert swintrace.check(solutions.window_attention, ATTENTION, model=model, image=images).right
    assert swintrace.check(solutions.relative_position_index, INDEX, model=model, image=images).right  # M = 4
    assert not swintrace.check(_index(stride=4), INDEX, model=model, image=images).right


@pytest.mark.parametrize(("step", "error"), [
    ("layers.0.blocks.0.attn", "check needs the step of a lab piece"),
    (3, "check needs the step of a lab piece"),
    ("layers.7.blocks.0.window_partition", "has no step layers.7.blocks.0.window_partition"),
    ("layers.0.blocks.0.cyclic_shift", "does not shift its map"),
])
def test_a_wrong_step_is_one_clear_error(step, error):
    with pytest.raises(swintrace.UserError, match=error):
        swintrace.check(solutions.window_partition, step)
    with pytest.raises(swintrace.UserError, match="not int"):
        swintrace.check(3, PARTITION)


def test_the_lab_notebook_is_stored_without_outputs_and_uses_public_names():
    notebook = nbformat.read(LAB, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    exercises = [cell for cell in code if cell.metadata.get("lab")]
    assert [cell.metadata["lab"] for cell in exercises] == [
        "window_partition", "window_reverse", "relative_position_index", "shift_and_mask", "window_attention"]
    source = "\n".join(cell.source for cell in code)
    assert not re.search(r"(from|import) swintrace\.", source)
    assert source.count("swintrace.check(") == 5


def test_the_lab_notebook_runs_with_its_solutions_and_every_check_is_right():
    import inspect

    notebook = nbformat.read(LAB, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.metadata.get("lab"):
            cell.source = inspect.getsource(getattr(solutions, cell.metadata["lab"]))
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    verdicts = [output["data"]["text/plain"] for output in outputs
                if output.output_type == "execute_result" and "swintrace-check" in output["data"].get("text/html", "")]
    assert len(verdicts) == 5 and all(verdict.startswith("Right: your ") for verdict in verdicts), verdicts
