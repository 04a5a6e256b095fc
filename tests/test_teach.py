"""The teaching model: the shapes data set, its shipped weights, and the script that trained them."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np
import pytest
import torch

from swintrace import load_model, load_trace
from swintrace.checkpoints.pretrained import PRETRAINED
from swintrace.cli import main
from swintrace.images import shapes
from swintrace.images.prepare import to_tensor_batch
from swintrace.train_teach import Settings, evaluate, fresh_model, train

WEIGHTS = resources.files("swintrace").joinpath("data/weights")
RECORD = json.loads(WEIGHTS.joinpath("teach_shapes.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def teacher():
    return load_model("swin_teach", pretrained=True)


@pytest.fixture(scope="module")
def held_out():
    """A fixed held-out sample (the held-out seed is never trained on)."""
    return shapes.generate(400, shapes.HELD_OUT_SEED)


def test_the_generator_is_deterministic_and_seeded():
    first, again = shapes.generate(12, 5), shapes.generate(12, 5)
    assert np.array_equal(first.images, again.images) and np.array_equal(first.labels, again.labels)
    assert np.array_equal(first.masks, again.masks)
    assert np.array_equal(shapes.generate(4, 5).images, first.images[:4])  # image k does not depend on count
    assert not np.array_equal(shapes.generate(12, 6).images, first.images)
    one = shapes.example("Triangle", seed=1)
    assert one.labels.tolist() == [shapes.CLASSES.index("triangle")] and one.images.shape == (1, 32, 32, 3)
    assert one.images.dtype == np.uint8 and 0.03 < one.masks.mean() < 0.5  # the object covers part of it


def test_every_class_and_mask_is_sound():
    batch = shapes.generate(300, 11)
    assert set(batch.labels.tolist()) == set(range(len(shapes.CLASSES)))
    assert batch.masks.min() >= 0 and batch.masks.max() <= 1
    covered = batch.masks.reshape(len(batch.labels), -1).mean(axis=1)
    assert (covered > 0.02).all() and (covered < 0.6).all()
    # the object is where the mask says: its pixels differ from the background's on average
    inside = (batch.masks > 0.9)[..., None]
    outside = (batch.masks == 0)[..., None]
    for image, inner, outer in zip(batch.images.astype(float), inside, outside):
        mean_in = (image * inner).sum((0, 1)) / inner.sum()
        mean_out = (image * outer).sum((0, 1)) / outer.sum()
        assert np.abs(mean_in - mean_out).sum() > 20


def test_colour_alone_does_not_tell_the_class():
    """A linear probe on each image's mean colour stays near chance (10 %): the model must see shape."""
    train_set, test_set = shapes.generate(1200, 101), shapes.generate(600, 202)

    def features(batch):
        return torch.from_numpy(batch.images.reshape(len(batch.labels), -1, 3).mean(1) / 255.0).float()  # N, 3

    probe = torch.nn.Linear(3, len(shapes.CLASSES))
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=200)
    x, y = features(train_set), torch.from_numpy(train_set.labels)

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    accuracy = (probe(features(test_set)).argmax(-1).numpy() == test_set.labels).mean()
    assert accuracy < 0.16, accuracy


def test_the_shipped_weights_reach_their_recorded_accuracy(teacher, held_out):
    assert teacher.weights_source["name"] == "teach_shapes" and teacher.class_labels == shapes.CLASSES
    accuracy, per_class = evaluate(teacher, held_out)
    assert RECORD["held_out_accuracy"] >= 0.90 and min(RECORD["held_out_per_class"].values()) >= 0.80
    assert accuracy >= 0.90 and min(per_class) >= 0.80, (accuracy, per_class)
    assert abs(accuracy - RECORD["held_out_accuracy"]) < 0.04
    weights = WEIGHTS.joinpath("teach_shapes.safetensors").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == RECORD["sha256"] and len(weights) < 300_000
    assert RECORD["classes"] == list(shapes.CLASSES) and RECORD["held_out_seed"] == shapes.HELD_OUT_SEED
    assert f"held-out acc {100 * RECORD['held_out_accuracy']:.1f} %" in PRETRAINED["teach_shapes"].source


def test_the_last_shifted_block_looks_at_the_shape(teacher, held_out):
    """Attention of the last SW-MSA block: a key token covered by the shape gets more weight than
    a background key of the same window (the data set's masks say which is which)."""
    captured = {}
    config = teacher.config
    # the last stage that really shifts: its map holds more than one window (stage 2 of 3 here)
    stage = max(s for s in range(config.num_stages) if config.stage_resolution(s) > config.stage_window(s)[0])
    block = teacher.layers[stage].blocks[1]
    hook = block.attn.softmax.register_forward_hook(lambda _m, _i, out: captured.__setitem__("attn", out))
    with torch.no_grad():
        teacher(to_tensor_batch(held_out.images))
    hook.remove()
    side = config.stage_resolution(stage)  # tokens per side; each covers stride x stride pixels
    stride = 32 // side
    shift = config.stage_window(stage)[1]
    M = config.stage_window(stage)[0]
    covered = held_out.masks.reshape(-1, side, stride, side, stride).mean(axis=(2, 4)) > 0.5  # B, side, side
    covered = np.roll(covered, (-shift, -shift), axis=(1, 2))  # the block's shifted map
    windows = covered.reshape(-1, side // M, M, side // M, M).transpose(0, 1, 3, 2, 4).reshape(-1, M * M)  # B*nW, N
    attn = captured["attn"].mean(1).numpy()  # B*nW, N, N: weight of key j for query i, heads averaged
    on_shape, on_background = [], []
    for keys, weights in zip(windows, attn):
        if keys.any() and not keys.all():
            on_shape.append(weights[:, keys].mean())
            on_background.append(weights[:, ~keys].mean())
    assert len(on_shape) > 100
    assert np.mean(on_shape) > 1.2 * np.mean(on_background), (np.mean(on_shape), np.mean(on_background))


def test_a_short_training_run_lowers_the_loss():
    data = shapes.generate(96, 3)
    model = fresh_model(0)
    losses = train(model, data, Settings(epochs=4, batch_size=16, learning_rate=3e-3, warmup_epochs=0))
    assert losses[-1] < losses[0] - 0.05, losses


def test_the_learning_rate_rises_stays_and_falls():
    import math

    from swintrace.train_teach import learning_rate_factor

    factor = learning_rate_factor(Settings(epochs=5, warmup_epochs=1, decay_epochs=2), steps_per_epoch=10)
    rates = [factor(step) for step in range(50)]
    assert rates[:10] == [(step + 1) / 10 for step in range(10)]  # warm-up: one epoch
    assert rates[10:31] == [1.0] * 21  # flat at the peak until the last two epochs
    assert all(later < earlier for earlier, later in zip(rates[30:], rates[31:])) and rates[-1] < 0.01
    # The shipped weights' recipe (the record is complete): all epochs after the warm-up decay.
    shipped = Settings(**RECORD["settings"])
    assert (shipped.epochs, shipped.decay_epochs) == (40, 39)
    factor = learning_rate_factor(shipped, steps_per_epoch=625)
    assert all(math.isclose(factor(step), 0.5 * (1 + math.cos(math.pi * (step - 625) / (39 * 625))))
               for step in range(625, 40 * 625, 97))
    # More decay than epochs after the warm-up: all of them decay, none is lost.
    factor = learning_rate_factor(Settings(epochs=2, warmup_epochs=1, decay_epochs=9), steps_per_epoch=4)
    assert [factor(step) for step in range(4, 8)] == pytest.approx([1.0, 0.8535534, 0.5, 0.1464466])


def test_the_script_writes_weights_and_their_record(tmp_path, capsys):
    from swintrace.train_teach import main as train_main

    out = tmp_path / "weights"
    assert train_main(["--out", str(out), "--epochs", "2", "--decay-epochs", "1", "--train-images", "64",
                       "--held-out-images", "20"]) == 0
    record = json.loads((out / "teach_shapes.json").read_text())
    assert record["settings"]["epochs"] == 2 and len(record["epoch_losses"]) == 2
    assert record["settings"]["decay_epochs"] == 1
    assert hashlib.sha256((out / "teach_shapes.safetensors").read_bytes()).hexdigest() == record["sha256"]
    load_model("swin_teach", weights=str(out / "teach_shapes.safetensors"))  # loads as a checkpoint
    assert train_main(["--out", str(out), "--epochs", "1", "--train-images", "8", "--held-out-images", "4"]) == 2
    assert "--force" in capsys.readouterr().err  # never replaces weights unasked


def test_a_shape_input_gets_a_confident_right_answer(tmp_path):
    for seed in range(3):
        out = tmp_path / f"triangle{seed}.jsonl"
        assert main(["--quiet", "run", "--input", "shape:triangle", "--seed", str(seed), "--out", str(out)]) == 0
        trace = load_trace(out)
        assert trace.header["model"]["variant"] == "swin_teach" and trace.header["weights"]["name"] == "teach_shapes"
        best = trace.footer["topk"][0][0]
        assert best["label"] == "triangle" and best["probability"] > 0.6, best
    chinese = tmp_path / "triangle.md"
    assert main(["--quiet", "run", "--input", "shape:triangle", "--lang", "zh", "--no-pictures", "--out", str(chinese)]) == 0
    assert "三角形" in chinese.read_text(encoding="utf-8")  # the classes are named in the report's language
    with pytest.raises(SystemExit) as refused:  # an option value argparse refuses: one line, exit 2
        main(["--quiet", "run", "--input", "shape:hexagon", "--out", str(tmp_path / "x.md")])
    assert refused.value.code == 2


def test_hostile_arguments_get_one_line(tmp_path, capsys):
    import swintrace
    from swintrace.train_teach import main as train_main

    for name, seed in [(None, 0), (5, 0), ("triangle", -1), ("triangle", 1.5), ("triangle", None), ("triangle", 2**70)]:
        with pytest.raises(swintrace.UserError):
            swintrace.shape_image(name, seed)
    blocker = tmp_path / "a file"
    blocker.write_text("mine")
    for out in (blocker, blocker / "sub", ""):  # refused before any image is drawn, in one line
        assert train_main(["--out", str(out), "--epochs", "1", "--train-images", "8", "--held-out-images", "4"]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert blocker.read_text() == "mine"
    for option in (["--seed", str(2**64)], ["--train-images", "10000000000"], ["--seed", "٣"]):
        with pytest.raises(SystemExit) as refused:
            train_main(["--out", str(tmp_path / "w"), *option])
        assert refused.value.code == 2


def test_the_shipped_v2_weights_reach_their_recorded_accuracy(held_out):
    """swin_v2_teach's weights (teach_shapes_v2), trained by the same script with --model swin_v2_teach."""
    record = json.loads(WEIGHTS.joinpath("teach_shapes_v2.json").read_text("utf-8"))
    teacher = load_model("swin_v2_teach", pretrained=True)
    assert teacher.weights_source["name"] == "teach_shapes_v2" and teacher.class_labels == shapes.CLASSES
    assert record["variant"] == "swin_v2_teach" and record["held_out_accuracy"] >= 0.90
    accuracy, per_class = evaluate(teacher, held_out)
    assert accuracy >= 0.86 and min(per_class) >= 0.65 and abs(accuracy - record["held_out_accuracy"]) < 0.05, (
        accuracy, per_class)
    weights = WEIGHTS.joinpath("teach_shapes_v2.safetensors").read_bytes()
    assert hashlib.sha256(weights).hexdigest() == record["sha256"] and len(weights) < 300_000
    assert f"held-out acc {100 * record['held_out_accuracy']:.1f} %" in PRETRAINED["teach_shapes_v2"].source
