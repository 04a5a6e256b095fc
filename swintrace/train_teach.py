"""Train ``swin_teach`` on the shapes data set: ``python -m swintrace.train_teach --out DIR``.

``--model swin_v2_teach`` trains its Swin V2 twin instead, into ``teach_shapes_v2.*``.

With its defaults (14 epochs of 40,000 images, the learning rate flat at its peak, then
falling in the last 4) it takes about 9 minutes on a 2-core CPU and reaches 92 % held-out
accuracy. The weights that ship as ``--weights teach_shapes`` (``swintrace/data/weights/``)
were made by this script trained longer: ``--epochs 40 --decay-epochs 39`` (21 minutes,
94.3 %). It writes two files: ``teach_shapes.safetensors`` (the weights) and
``teach_shapes.json`` (the data set's seeds and classes, the training settings,
the swintrace version and the held-out accuracy, per class too).

Everything is seeded: the data set (``shapes.TRAIN_SEED``, and the held-out
``shapes.HELD_OUT_SEED``, never trained on), the initial weights, the batch
order and the flips. Thread scheduling may still change the last bits.
docs/teaching-model.md tells how the shipped weights were made and how they do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save

from ._version import __version__
from .checkpoints.loading import load_model
from .errors import OneLineParser, UserError, bounded_integer, log_to_stderr, printable
from .files import write_files
from .images import shapes
from .images.prepare import to_tensor_batch
from .images.shapes import WEIGHTS_NAME
from .models.swin import SwinTransformer

# The variants this script trains -> the name of their weights (``--weights NAME``).
TRAINED = {"swin_teach": WEIGHTS_NAME, "swin_v2_teach": f"{WEIGHTS_NAME}_v2"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """How to train (recorded beside the weights). The defaults take about 9 minutes on 2 cores
    and reach 92 % held-out; the shipped weights were trained longer: epochs=40, decay_epochs=39."""

    train_images: int = 40_000
    held_out_images: int = 1_000
    epochs: int = 14
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 0.02
    warmup_epochs: int = 1
    # The learning rate rises over the warm-up, stays at its peak, then falls to 0 along half a
    # cosine in the last decay_epochs (at most all epochs after the warm-up).
    decay_epochs: int = 4
    label_smoothing: float = 0.0
    seed: int = 0


def learning_rate_factor(settings: Settings, steps_per_epoch: int) -> Callable[[int], float]:
    """The factor of the peak learning rate at each optimizer step: warm-up, flat, cosine decay."""
    total = settings.epochs * steps_per_epoch
    warmup = min(settings.warmup_epochs * steps_per_epoch, total)
    decay = min(settings.decay_epochs * steps_per_epoch, total - warmup)
    flat_end = total - decay

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if step < flat_end:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * (step - flat_end) / max(1, decay)))

    return factor


def fresh_model(seed: int, variant: str = "swin_teach") -> SwinTransformer:
    """``swin_teach`` to train from scratch: PyTorch's default initialisation of the linear layers
    (scaled to each layer's width), zero bias tables, no drop-path (the data set is large).

    The official initialisation (a truncated normal of std 0.02 for every linear layer) suits
    widths of 96 and more; in this 8-channel model it leaves training on a plateau for many
    epochs (loss 2.30 after six epochs, where this one is at 1.5; docs/teaching-model.md).
    A Swin V2 keeps its post-norms at zero, as the official initialisation does: every block
    starts as the identity.
    """
    model = load_model(variant, weights="random", seed=seed, drop_path_rate=0.0)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.reset_parameters()  # the V2 position-bias MLP's too
            table = getattr(module, "relative_position_bias_table", None)
            if isinstance(table, torch.nn.Parameter):
                table.zero_()
    return model


def train(
    model: SwinTransformer, data: shapes.ShapeBatch, settings: Settings,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train ``model`` in place on ``data``; returns the mean loss of each epoch.

    AdamW with a linear warm-up, a flat peak, then a cosine decay to 0 (``learning_rate_factor``),
    optional label smoothing,
    random horizontal flips (a flipped image keeps its class), and the model's
    own drop-path (none in ``fresh_model``).
    """
    generator = torch.Generator().manual_seed(settings.seed)
    images = to_tensor_batch(data.images)  # N, 3, 32, 32, normalised as swintrace run prepares an image
    labels = torch.from_numpy(data.labels)
    # foreach: each update is one operation over all 92 parameter tensors, not a Python loop over them.
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate,
                                  weight_decay=settings.weight_decay, foreach=True)
    steps_per_epoch = math.ceil(len(labels) / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor(settings, steps_per_epoch))
    losses = []
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)  # drop-path draws from the global generator
        for epoch in range(settings.epochs):
            order = torch.randperm(len(labels), generator=generator)
            epoch_loss = 0.0
            for start in range(0, len(labels), settings.batch_size):
                chosen = order[start:start + settings.batch_size]
                batch = images[chosen]  # B, 3, 32, 32
                flip = torch.rand(len(chosen), generator=generator) < 0.5
                batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
                loss = torch.nn.functional.cross_entropy(
                    model(batch), labels[chosen], label_smoothing=settings.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                epoch_loss += loss.item() * len(chosen)
            losses.append(epoch_loss / len(labels))
            if on_epoch is not None:
                on_epoch(epoch, losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def evaluate(model: SwinTransformer, data: shapes.ShapeBatch) -> tuple[float, list[float]]:
    """(accuracy, accuracy of each class) of ``model`` on ``data``, in eval mode."""
    was_training = model.training
    model.eval()
    predicted = torch.cat([model(to_tensor_batch(data.images[start:start + 500])).argmax(-1)
                           for start in range(0, len(data.labels), 500)]).numpy()
    model.train(was_training)
    right = predicted == data.labels
    per_class = [float(right[data.labels == index].mean()) if (data.labels == index).any() else 0.0
                 for index in range(len(shapes.CLASSES))]
    return float(right.mean()), per_class


def weights_files(model: SwinTransformer, record: dict[str, object], folder: Path,
                  name: str = WEIGHTS_NAME) -> dict[Path, bytes]:
    """The two files of trained weights: the safetensors (with its SHA-256 in the record) and the record."""
    tensors = {key: tensor.detach().contiguous() for key, tensor in model.state_dict().items()
               if not key.endswith(("relative_position_index", "attn_mask"))}
    weights = save(tensors, metadata={"format": "pt", "swintrace": __version__})
    record = {**record, "sha256": hashlib.sha256(weights).hexdigest()}
    text = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
    return {folder / f"{name}.safetensors": weights, folder / f"{name}.json": text.encode()}


def run(settings: Settings, folder: Path, force: bool = False, variant: str = "swin_teach") -> dict[str, object]:
    """Make the data set, train, evaluate and write the weights into ``folder``; returns the record."""
    name = TRAINED[variant]
    targets = [folder / f"{name}.safetensors", folder / f"{name}.json"]
    # Everything about the output is checked before minutes of training, not after.
    if any(place.exists() and not place.is_dir() for place in (folder, *folder.parents)):
        raise UserError.of("train_out_not_folder", out=str(folder)[:200])
    if any(path.is_dir() for path in targets):
        raise UserError.of("write_target_is_folder", path=next(path for path in targets if path.is_dir()))
    existing = [str(path) for path in targets if path.exists()]
    if existing and not force:
        raise UserError.of("train_out_exists", paths=", ".join(existing))
    started = time.perf_counter()
    log.info("drawing %d training and %d held-out images", settings.train_images, settings.held_out_images)
    train_data = shapes.generate(settings.train_images, shapes.TRAIN_SEED)
    held_out = shapes.generate(settings.held_out_images, shapes.HELD_OUT_SEED)
    model = fresh_model(settings.seed, variant)

    def report(epoch: int, loss: float) -> None:
        accuracy, _ = evaluate(model, held_out)
        done = (epoch + 1) / settings.epochs
        bar = "#" * round(30 * done) + "." * (30 - round(30 * done))
        log.info("[%s] epoch %2d/%d  loss %.3f  held-out %.1f %%  (%.0f s)", bar, epoch + 1,
                 settings.epochs, loss, 100 * accuracy, time.perf_counter() - started)

    losses = train(model, train_data, settings, report)
    accuracy, per_class = evaluate(model, held_out)
    record: dict[str, object] = {
        "name": name,
        "variant": variant,
        "classes": list(shapes.CLASSES),
        "train_seed": shapes.TRAIN_SEED,
        "held_out_seed": shapes.HELD_OUT_SEED,
        "settings": asdict(settings),
        "swintrace_version": __version__,
        "torch_version": torch.__version__,
        "epoch_losses": [round(loss, 4) for loss in losses],
        "held_out_accuracy": round(accuracy, 4),
        "held_out_per_class": {name: round(value, 4) for name, value in zip(shapes.CLASSES, per_class)},
        "seconds": round(time.perf_counter() - started, 1),
    }
    try:
        write_files(weights_files(model, record, folder, name))
    except OSError as error:
        raise UserError.of("train_write", out=folder, why=error.strerror or error) from None
    log.info("held-out accuracy %.1f %% (worst class %.1f %%); wrote %s", 100 * accuracy,
             100 * min(per_class), ", ".join(str(path) for path in targets))
    return record


# What one drawn image holds while training: its uint8 pixels and float32 mask (shapes.ShapeBatch)
# and its normalised float32 tensor (to_tensor_batch); the images of both sets are held at once.
BYTES_PER_IMAGE = shapes.SIDE * shapes.SIDE * (3 + 4 + 3 * 4)
# The data sets may take this much memory (about 200,000 images in all).
IMAGE_MEMORY_BUDGET = 4 << 30
MAX_IMAGES = IMAGE_MEMORY_BUDGET // BYTES_PER_IMAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m swintrace.train_teach",
        description="Train swin_teach on swintrace's shapes data set and write teach_shapes.safetensors with "
        "its record, teach_shapes.json (the defaults: about 9 minutes on 2 cores, 92 % held-out).")
    parser.add_argument("--out", required=True, help="folder for teach_shapes.safetensors and teach_shapes.json")
    parser.add_argument("--model", choices=sorted(TRAINED), default="swin_teach",
                        help="the variant to train (default: %(default)s; swin_v2_teach writes teach_shapes_v2.*)")
    parser.add_argument("--epochs", type=bounded_integer(1, 1000), default=Settings.epochs,
                        help="passes over the training images (default: %(default)s)")
    parser.add_argument("--decay-epochs", type=bounded_integer(0, 1000), default=Settings.decay_epochs,
                        help="the last epochs, in which the learning rate falls to 0 (default: %(default)s; "
                        "at most the epochs after the first)")
    parser.add_argument("--train-images", type=bounded_integer(1, MAX_IMAGES), default=Settings.train_images,
                        help="images drawn for training (default: %(default)s)")
    parser.add_argument("--held-out-images", type=bounded_integer(1, MAX_IMAGES), default=Settings.held_out_images,
                        help="images drawn for the held-out accuracy, never trained on (default: %(default)s)")
    parser.add_argument("--seed", type=bounded_integer(0, 2**63 - 1), default=Settings.seed,
                        help="seed of the initial weights, the batches and the flips (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace weights already in --out")
    args = parser.parse_args(argv)
    log_to_stderr(logging.INFO)
    settings = Settings(train_images=args.train_images, held_out_images=args.held_out_images,
                        epochs=args.epochs, decay_epochs=args.decay_epochs, seed=args.seed)
    try:
        if args.train_images + args.held_out_images > MAX_IMAGES:
            raise UserError.of("train_images_memory", images=args.train_images + args.held_out_images,
                               limit=MAX_IMAGES, gib=IMAGE_MEMORY_BUDGET >> 30)
        if not args.out.strip():  # Path("") would be the current folder
            raise UserError.of("train_out_not_folder", out=repr(args.out))
        run(settings, Path(args.out), force=args.force, variant=args.model)
    except UserError as error:
        sys.stderr.write(f"swintrace: error: {printable(str(error))}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
