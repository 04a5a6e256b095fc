"""Tracing the backward pass: exact gradients, in autograd's order, that say what the lesson says.

Each fact is checked against an independent computation: an untraced copy's autograd, a
scatter-add over the M = 2 index matrix written here by hand, the attention mask, the
drop-path draws, the loss after one SGD step measured again.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import swintrace
from swintrace.errors import UserError


def _images(batch: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _untraced(model, images, target=None):
    """(logits, {name: grad}) of an untraced forward and cross-entropy backward."""
    logits = model(images)
    targets = logits.detach().argmax(-1) if target is None else torch.full((images.shape[0],), target)
    F.cross_entropy(logits, targets).backward()
    return logits, {name: p.grad for name, p in model.named_parameters()}


@pytest.fixture(scope="module")
def teacher():
    return swintrace.load_model("swin_teach", weights="pretrained")


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_traced_forward_and_gradients_equal_untraced_autograd_bit_for_bit(teach_model, training):
    traced, untraced = copy.deepcopy(teach_model).train(training), copy.deepcopy(teach_model).train(training)
    images = _images(2)
    torch.manual_seed(5)
    logits, grads = _untraced(untraced, images, target=3)
    trace = swintrace.trace_image(traced, images, backward=True, target=3, seed=5)
    with torch.no_grad():
        torch.manual_seed(5)
        assert torch.equal(traced(images), logits) or training  # eval: the same forward, untraced
    for name, parameter in traced.named_parameters():
        assert torch.equal(parameter.grad, grads[name]), name
    # The recorded gradients are autograd's: the logits' is (softmax - one hot) / B, and the bias tables'
    # whole arrays are the parameters' .grad.
    first = trace.backward[0]
    assert (first.type, first.id) == ("grad", "forward_head.output")
    expected = (logits.detach().softmax(-1) - F.one_hot(torch.tensor([3, 3]), 10)) / 2
    assert torch.allclose(torch.tensor(first.tensor("x").array), expected[:3, :3], atol=1e-7)
    tables = [e for e in trace.backward if e.kind == "bias_table_grad"]
    assert len(tables) == 6
    for event in tables:
        assert torch.equal(torch.tensor(event.array("grad").array), grads[event.id])
    assert trace.header["backward"]["target"] == 3 and not trace.header["backward"]["top1"]


@settings(max_examples=8, deadline=None)
@given(batch=st.integers(1, 2), height=st.integers(17, 40), width=st.integers(17, 40))
def test_gradients_are_untouched_at_any_size(teach_model, batch, height, width):
    """Padding, cropping and rolls on maps that are not whole windows: still autograd's, bit for bit."""
    traced, untraced = copy.deepcopy(teach_model), copy.deepcopy(teach_model)
    images = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(height * width))
    _, grads = _untraced(untraced, images)
    trace = swintrace.trace_image(traced, images, backward=True, stats=False, pictures=False)
    assert all(torch.equal(p.grad, grads[name]) for name, p in traced.named_parameters())
    assert sum(e.type == "param_grad" for e in trace.backward) == 14


def test_steps_come_in_the_order_autograd_visits_them(teacher):
    trace = swintrace.trace_image(teacher, swintrace.shape_image("triangle"), backward=True, target="circle")
    order = [e.id for e in trace.backward if e.type == "grad"]
    forward = {e.id: e.seq for e in trace.events if e.type == "step"}
    # Every step is met after the steps that used its tensors: the block's output before its input,
    # the reverse shift before the window reverse, the scores before q.
    for later, earlier in [("layers.0.blocks.1.output", "layers.0.blocks.1.input"),
                           ("layers.0.blocks.1.reverse_shift", "layers.0.blocks.1.merge_windows"),
                           ("layers.0.blocks.1.attn.softmax", "layers.0.blocks.1.attn.scores"),
                           ("layers.0.blocks.1.attn.scores", "layers.0.blocks.1.attn.scale"),
                           ("layers.0.blocks.1.cyclic_shift", "layers.0.blocks.1.norm1"),
                           ("layers.1.input", "layers.0.downsampled")]:
        assert order.index(later) < order.index(earlier), (later, earlier)
        assert forward[later] > forward[earlier]
    assert order[-1].startswith("patch_embed.")
    # The mask and the index hold no gradient: no step event shows them.
    shown = {t.name for e in trace.backward for t in e.tensors}
    assert not shown & {"mask", "attn_mask", "relative_position_index", "random_tensor"}


# The relative position index of a 2x2 window (DESIGN.md): row i, column j is the table row used
# by query i and key j.
INDEX_M2 = [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]


def test_the_bias_table_gradient_is_a_scatter_add_of_the_score_gradients(teacher):
    blocks = [f"layers.{stage}.blocks.{block}" for stage in (0, 1) for block in (0, 1)]
    trace = swintrace.trace_image(teacher, swintrace.shape_image("triangle"), backward=True, target="square",
                                  capture=[f"{block}.attn.scores" for block in blocks])
    tables = {e.id: torch.tensor(e.array("grad").array) for e in trace.backward if e.kind == "bias_table_grad"}
    for block in blocks:
        scores = trace.tensor(f"{block}.attn.scores", "attn.grad")  # B*nW, heads, N, N
        expected = torch.zeros(9, scores.shape[1], dtype=torch.float64)
        for i in range(4):
            for j in range(4):
                expected[INDEX_M2[i][j]] += scores[:, :, i, j].double().sum(0)
        table = tables[f"{block}.attn.relative_position_bias_table"]
        assert torch.allclose(table.double(), expected, rtol=1e-5, atol=1e-9), block
        assert table.abs().max() > 1e-6  # a gradient that says something
    # every row of a 2x2 window's table is fed by (2 - |dy|) (2 - |dx|) pairs of each window
    counts = torch.bincount(torch.tensor(INDEX_M2).flatten(), minlength=9)
    assert counts.tolist() == [1, 2, 1, 2, 4, 2, 1, 2, 1]


def test_masked_pairs_get_no_gradient(teacher):
    block = "layers.0.blocks.1"
    trace = swintrace.trace_image(teacher, swintrace.shape_image("triangle"), backward=True, target="square",
                                  capture=[f"{block}.attn.scores", "layers.0.attn_mask"])
    grad = trace.tensor(f"{block}.attn.scores", "attn.grad")  # nW, heads, N, N
    mask = trace.tensor("layers.0.attn_mask", "attn_mask")  # nW, N, N: 0 or -100
    masked = (mask != 0).unsqueeze(1).expand_as(grad)
    assert grad.dtype == torch.float32 and masked.sum() == 60 * 2  # 60 masked pairs, 2 heads
    assert grad[masked].abs().max() < 1e-30
    assert grad[~masked].abs().max() > 1e-6
    # The picture's row: the explored query's keys, the masked ones at (near) zero.
    row_event = next(e for e in trace.backward if e.array("grad_row") is not None)
    assert row_event.id == f"{block}.attn.scores"
    window, token = (int(v) for v in trace[f"{block}.cyclic_shift"].array("query").array[4:6])
    assert torch.equal(torch.tensor(row_event.array("grad_row").array), grad[window, :, token])
    assert masked[window, 0, token].any()


def test_a_dropped_sample_gets_no_gradient_through_its_branch(teach_model):
    model = copy.deepcopy(teach_model).train()
    branch = "layers.2.blocks.1.drop_path.drop_path_f"
    trace = swintrace.trace_image(model, _images(16), backward=True, seed=1,
                                  capture=[f"{branch}.input", f"{branch}.output"])
    draws = trace.tensor(f"{branch}.output", "random_tensor").flatten()  # B: 1 keeps, 0 drops
    grad = trace.tensor(f"{branch}.input", "x.grad")  # B, L, C: the branch's gradient
    dropped = draws == 0
    assert 0 < dropped.sum() < 16  # the seed drops some samples, keeps others
    assert torch.all(grad[dropped] == 0)
    assert torch.all(grad[~dropped].abs().amax(dim=(1, 2)) > 0)


def test_one_sgd_step_lowers_the_loss_on_its_image(teacher):
    model = copy.deepcopy(teacher)
    image = swintrace.shape_image("triangle")
    trace = swintrace.train_step(model, image, lr=0.1, target="square")
    step = trace.header["train_step"]
    assert step["loss_after"] < step["loss_before"]
    # measured again, independently, on the changed model
    images, _ = swintrace.api.trace_image.prepare_for(model, image)
    with torch.no_grad():
        loss = F.cross_entropy(model.eval()(images), torch.tensor([trace.header["backward"]["target"]]))
    assert loss.item() == pytest.approx(step["loss_after"], rel=1e-6)
    # the rows listed moved by -lr * their gradient
    moved = step["moved"][0]
    table = next(e for e in trace.backward if e.id == moved["parameter"])
    gradient = table.array("grad").array[moved["row"]][moved["head"]]
    assert moved["change"] == pytest.approx(-0.1 * gradient, rel=1e-3)
    assert not model.training
    # the training-mode forward's drop-path draws are in the trace
    assert any(e.tensors and e.tensors[-1].name == "random_tensor" for e in trace.steps(kind="output"))


def test_train_step_and_target_refuse_mistakes(teacher, teach_model):
    with pytest.raises(UserError, match="teaching model"):
        swintrace.train_step(swintrace.load_model("swin_t"), torch.zeros(3, 224, 224))
    for lr in (0, -1, float("nan"), 1e9, "0.1"):
        with pytest.raises(UserError, match="learning rate"):
            swintrace.train_step(copy.deepcopy(teacher), torch.zeros(3, 32, 32), lr=lr)
    for target, words in ((10, "numbered 0 to 9"), ("dog", "no class"), (1.5, "class index")):
        with pytest.raises(UserError, match=words):
            swintrace.trace_image(teacher, torch.zeros(3, 32, 32), backward=True, target=target)


def test_the_backward_trace_saves_reloads_and_refuses_forgeries(teacher, tmp_path):
    trace = swintrace.trace_image(teacher, swintrace.shape_image("triangle"), backward=True)
    path = trace.save(tmp_path / "t.jsonl")
    assert swintrace.load_trace(path) == trace
    lines = path.read_text("utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if '"type":"grad"' in line)
    table = next(i for i, line in enumerate(lines) if '"kind":"bias_table_grad"' in line)

    def forged(position, change):
        row = json.loads(lines[position])
        change(row)
        changed = [*lines[:position], json.dumps(row), *lines[position + 1:]]
        (tmp_path / "f.jsonl").write_text("\n".join(changed) + "\n", "utf-8")
        with pytest.raises(UserError) as error:
            swintrace.load_trace(tmp_path / "f.jsonl")
        return str(error.value)

    assert "no step of the forward" in forged(first, lambda row: row.update(id="layers.0.blocks.9.output"))
    assert "no step of the forward" in forged(first, lambda row: row.update(kind="softmax"))
    assert "not a field" in forged(first, lambda row: row.update(code=["import os"]))
    assert "expected 0" in forged(first, lambda row: row.update(seq=5))
    assert "model's sizes" in forged(table, lambda row: (row.pop("arrays"), row["tensors"][0]["shape"].__setitem__(0, 25)))
    assert "parameter gradient" in forged(table, lambda row: row.update(id="layers.0.blocks.0.attn.qkv.weight"))
    assert "grad or param_grad" in forged(len(lines) - 2, lambda row: row.update(type="step"))
    header = json.loads(lines[0])
    assert "backward" in header
    assert "backward.target" in forged(0, lambda row: row["backward"].update(target=99))


def test_the_backward_trace_of_swin_teach_renders_after_reloading(teacher, tmp_path):
    from test_words import _english_runs

    from swintrace.render.html import render_html
    from swintrace.render.markdown import render_markdown

    model = copy.deepcopy(teacher)
    trace = swintrace.train_step(model, swintrace.shape_image("triangle"), lr=0.1, target="square")
    loaded = swintrace.load_trace(trace.save(tmp_path / "t.jsonl"))
    pictures = swintrace.make_pictures(loaded, "zh")
    names = {picture.name: picture for picture in pictures}
    assert {"grad_sizes", "grad_bias_layers_0_blocks_1", "grad_scores_layers_0_blocks_1"} <= set(names)
    assert names["grad_bias_layers_0_blocks_1"].meta["side"] == 3
    assert any(names["grad_scores_layers_0_blocks_1"].meta["masked"])  # the default query's window is split
    links = {p.step_id: [(p.alt, f"{p.name}.png")] for p in pictures}
    markdown = render_markdown(loaded, "zh", links, explain=True)
    page = render_html(loaded, "zh", pictures)
    from swintrace.render.text import label

    assert markdown.index("# 反向传播") > markdown.index(f"# {label('zh', 'top', k=5)}")  # after the forward
    assert "attn.grad[:3,:3,:3,:3]" in markdown and "relative_position_bias_table.grad[:3,:3]" in markdown
    assert "# 一步训练" in markdown and "grad_bias_layers_0_blocks_1.png" in markdown
    # the gradients come in autograd's order: the softmax's before the scores' in every block
    assert page.index('id="grad', page.index("layers.0.blocks.1.attn.softmax</code>")) > 0
    first, second = (page.index(f'-layers.0.blocks.1.attn.{name}"') for name in ("softmax", "scores"))
    assert 'id="backward"' in page and first < second
    backward = {"report.md": markdown[markdown.index("# 反向传播"):], "report.html": page[page.index('id="backward"'):]}
    assert _english_runs(backward) == set()
    english = render_markdown(loaded, "en", explain=True)
    assert "# Backward pass" in english and "scatter-add" in english and "Loss after the step" in english


def test_notebook_views_show_backward_steps_like_forward_ones(teacher):
    trace = swintrace.trace_image(teacher, swintrace.shape_image("triangle"), backward=True, target="square")
    page = trace._repr_html_()
    assert 'id="backward"' in page and page.index('id="backward"') > page.index("layers.2.blocks.1.output")
    softmax = next(e for e in trace.backward if e.id == "layers.0.blocks.1.attn.softmax")
    view = softmax._repr_html_()
    assert "Gradient · " in view and "attn.grad" in view and 'class="step' in view
