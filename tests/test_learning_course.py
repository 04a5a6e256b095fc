"""The chapter "How Swin learns": its numbers and answers are the traced backward's, checked against
facts computed here without swintrace's code (the M = 2 index written by hand, the model's own mask
and score gradients captured whole, softmax of the logits, the loss measured again); a course
without a backward says so instead of quoting numbers.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import swintrace
from swintrace.api.course_trace import trace_for_course
from swintrace.api.inputs import make_input
from swintrace.course_text import CHAPTERS
from swintrace.render.course import chapter_gradients, chapter_text
from swintrace.render.lessons import course_facts, exercises, fact_text

# The relative position index of a 2x2 window (DESIGN.md): row i, column j is the table row read
# by query i and key j.
INDEX_M2 = [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
CHAPTER = next(chapter for chapter in CHAPTERS if chapter.slug == "how-swin-learns")
BLOCK = "layers.0.blocks.1"


@pytest.fixture(scope="module")
def taught():
    """(model before the step, the course's trace of the triangle, the input) of swin_teach's trained weights."""
    model = swintrace.load_model("swin_teach", weights="pretrained")
    images, described = make_input(model, None, "shape:triangle", 0, 32)
    before = copy.deepcopy(model)
    trace = trace_for_course(model, images, described)
    return before, trace, images


def _asked(trace, lang="en"):
    return {exercise.question: exercise for exercise in exercises(trace, CHAPTER, lang, course_facts(trace))}


def test_the_chapter_sits_before_v1_to_v2_and_shows_the_backward(taught):
    slugs = [chapter.slug for chapter in CHAPTERS]
    assert slugs.index("how-swin-learns") == 12 and slugs[13] == "v1-to-v2"  # 13-how-swin-learns, 14-v1-to-v2
    _, trace, _ = taught
    shown = [event.id for event in chapter_gradients(trace, CHAPTER)]
    assert shown[0] == "forward_head.output"  # autograd's order: from the loss back
    assert shown.index(f"{BLOCK}.attn.softmax") < shown.index(f"{BLOCK}.attn.scores")
    assert f"{BLOCK}.attn.relative_position_bias_table" in shown


def test_the_target_is_the_runner_up_and_the_numbers_are_the_traced_ones(taught):
    before, trace, images = taught
    with torch.no_grad():
        probabilities = before.eval()(images).softmax(-1)[0]  # classes
    top1, runner_up = probabilities.topk(2).indices.tolist()
    described = trace.header["backward"]
    assert described["target"] == runner_up and not described["top1"]
    assert described["loss"] == pytest.approx(-probabilities[runner_up].log().item(), rel=1e-4)
    facts = course_facts(trace).text
    # the logits' gradient is softmax - one hot: the target's p - 1, and the largest p of the others
    assert float(facts["learn_grad_target"]) == pytest.approx(probabilities[runner_up].item() - 1, abs=1e-5)
    assert float(facts["learn_grad_top"]) == pytest.approx(probabilities[top1].item(), abs=1e-5)
    assert facts["learn_target"] == before.class_labels[runner_up] and facts["learn_top1"] == before.class_labels[top1]
    chinese = fact_text(course_facts(trace), "zh")
    assert chinese["learn_target"] not in (facts["learn_target"], "—")  # the classes named in Chinese
    assert chinese["learn_top1"] == "三角形"
    text = chapter_text(CHAPTER, "en", course_facts(trace))
    assert "—" not in text and "{" not in text and "One training step" in text


def test_the_training_step_is_one_sgd_step_that_lowers_the_loss(taught):
    before, trace, images = taught
    step, target = trace.header["train_step"], trace.header["backward"]["target"]
    model = copy.deepcopy(before).eval()
    loss = F.cross_entropy(model(images), torch.tensor([target]))
    loss.backward()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter -= 0.1 * parameter.grad  # plain SGD, by hand
        after = F.cross_entropy(model(images), torch.tensor([target])).item()
    assert step["lr"] == 0.1 and step["loss_before"] == pytest.approx(loss.item(), rel=1e-5)
    assert step["loss_after"] == pytest.approx(after, rel=1e-4) and after < loss.item()
    moved = step["moved"][0]
    table = dict(model.named_parameters())[moved["parameter"]].grad
    assert moved["change"] == pytest.approx(-0.1 * table[moved["row"], moved["head"]].item(), rel=1e-3)


def test_pairs_feeding_a_row_are_counted_from_the_index_by_hand(taught):
    _, trace, _ = taught
    question = next(e for q, e in _asked(trace).items() if "Row 7" in q)  # offset (1, 0) of a 2x2 window
    expected = sum(row.count(7) for row in INDEX_M2)
    assert expected == 2 and question.answer == str(expected)
    assert INDEX_M2[2][0] == INDEX_M2[3][1] == 7  # the two pairs: query one row below its key


def test_masked_pairs_of_the_split_window_are_those_without_gradient(teach_model):
    """Against the model's own mask and its score gradient, captured whole (random weights: any model)."""
    model = copy.deepcopy(teach_model)
    images, described = make_input(model, None, "shape:triangle", 0, 32)
    with swintrace.tracing(backward=True, capture=[f"{BLOCK}.attn.scores", "layers.0.attn_mask"]) as captured:
        logits = model(images)
        F.cross_entropy(logits, logits.detach().topk(2).indices[:, 1]).backward()
    mask = captured.tensor("layers.0.attn_mask", "attn_mask")  # nW, N, N: 0 or -100
    grad = captured.tensor(f"{BLOCK}.attn.scores", "attn.grad")  # nW, heads, N, N
    trace = trace_for_course(copy.deepcopy(teach_model), images, described)
    window = int(trace[f"{BLOCK}.cyclic_shift"].array("query").values[4])
    question = next(e for q, e in _asked(trace).items() if "get no gradient through their score" in q)
    masked = mask[window] != 0  # N, N
    assert 0 < masked.sum() < masked.numel()  # the explored window is split
    assert question.answer == str(int(masked.sum()))
    silent = (grad[window].abs() < 1e-30).all(dim=0)  # N, N: pairs no head gets a gradient for
    assert torch.equal(silent, masked)
    assert f"window {window} " in question.question


def test_concepts_have_one_right_answer_each_at_varied_places(taught):
    _, trace, _ = taught
    for lang in ("en", "zh"):
        choices = [e for e in _asked(trace, lang).values() if e.kind == "choice"]
        assert len(choices) == 3 and sorted(int(e.answer) for e in choices) == [0, 1, 3]
        assert all(len(e.choices) == len(e.why) == 4 and all(e.why) for e in choices)
    right = {e.choices[int(e.answer)] for e in _asked(trace).values() if e.kind == "choice"}
    assert any("e⁻¹⁰⁰" in choice for choice in right) and any("multiplied by 0" in choice for choice in right)
    assert any("one row per offset" in choice for choice in right)


def test_a_course_without_a_backward_says_how_to_get_one(teach_model, tmp_path):
    from test_words import _english_runs

    from swintrace.render.course import build_course

    with torch.no_grad(), swintrace.tracing(pictures=True, stats=True) as trace:
        teach_model(torch.zeros(1, 3, 32, 32))
    facts = course_facts(trace)
    assert facts.numbers["learned"] == ""
    text = chapter_text(CHAPTER, "en", facts)
    assert "no backward pass" in text and "swintrace course --model swin_teach" in text
    assert {e.kind for e in exercises(trace, CHAPTER, "en", facts)} == {"number", "choice"}  # from the forward
    build_course(trace, tmp_path, languages=("zh",))
    page = (tmp_path / "zh" / "13-how-swin-learns.html").read_text("utf-8")
    assert "swintrace course --model swin_teach" in page and _english_runs({"13": page}) == set()


def test_the_course_command_traces_the_backward_and_refuses_a_wrong_target(tmp_path, capsys):
    from test_words import _english_runs

    from swintrace.cli import main

    out = tmp_path / "course"
    assert main(["-q", "course", "--model", "swin_teach", "--target", "square", "--out", str(out)]) == 0
    loaded = swintrace.load_trace(out / "trace.jsonl")
    assert loaded.header["backward"]["label"] == "square" and "train_step" in loaded.header
    chinese = (out / "zh" / "13-how-swin-learns.html").read_text("utf-8")
    assert "正方形" in chinese and _english_runs({"13": chinese}) == set()
    markdown = (out / "en" / "13-how-swin-learns.md").read_text("utf-8")
    assert "relative_position_bias_table.grad" in markdown and "grad_bias_layers_0_blocks_1.png" in markdown
    slides = (out / "en" / "slides.html").read_text("utf-8")
    assert "How Swin learns" in slides and "loss after the step" in slides
    assert "How Swin learns" in (out / "en" / "worksheet.html").read_text("utf-8")
    assert main(["-q", "course", "--model", "swin_teach", "--target", "dog", "--out", str(tmp_path / "x")]) == 2
    error = capsys.readouterr().err
    assert "no class" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
