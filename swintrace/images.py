"""ImageNet class labels shipped with the package."""

from __future__ import annotations

import functools
from importlib import resources

IMAGENET_CLASSES = 1000


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k labels in class-index order (first name of each synset)."""
    text = resources.files("swintrace").joinpath("data/imagenet_classes.tsv").read_text("utf-8")
    labels = []
    for row in text.splitlines()[1:]:
        index, _synset, label = row.split("\t")
        if int(index) != len(labels):
            raise RuntimeError(f"imagenet_classes.tsv is out of order at index {index}")
        labels.append(label.split(",")[0].strip())
    return tuple(labels)


def class_label(index: int, num_classes: int | None) -> str:
    """The human label of a class: ImageNet's for a 1000-class head, else 'class N'."""
    if num_classes == IMAGENET_CLASSES:
        return imagenet_labels()[index]
    return f"class {index}"
