"""Tensor summaries that never synchronise the device during a forward pass.

While a forward runs, ``SummaryBatch.summarise`` only launches device work:
it clones the seed-style slice ``t[:n, :n, ...]`` and reduces min, max, sum
and sum of squares into small tensors that stay where the data lives. ``SummaryBatch.flush``
moves all of them to the host at once, after the forward (one transfer per
dtype instead of one per step), and fills the ``TensorSummary`` objects.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from .events import TensorSummary

# Tensors with these names are attention masks: their summary counts masked entries.
MASK_NAMES = frozenset({"mask", "attn_mask"})
# How many recently summarised tensors are remembered, so that the same tensor
# shown by consecutive steps (a scope's output, then the caller's next step)
# is reduced only once. Entries keep their tensor alive, so the memory is small
# and a remembered address cannot be reused by another tensor.
_RECENT = 16


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@functools.lru_cache(maxsize=64)
def slice_index(ndim: int, length: int) -> str:
    """The slice expression the seed prints: ``[:3,:3,:3]`` for a 3-D tensor."""
    return "[" + ",".join(f":{length}" for _ in range(ndim)) + "]" if ndim else ""


@dataclass
class _Pending:
    """Device-side results for one tensor, shared by every summary that shows it.

    ``stats`` is (min, max, sum, sum of squares); mean and std follow on the host.
    The std is sqrt(E[x^2] - E[x]^2) from float32 sums: exact enough to read,
    approximate for data whose spread is tiny next to its mean.
    """

    slice_: torch.Tensor | np.ndarray
    stats: torch.Tensor | None
    masked: torch.Tensor | None
    summaries: list[TensorSummary] = field(default_factory=list)


class SummaryBatch:
    """Summaries of one forward pass, waiting for a single move to the host."""

    def __init__(self, slice_len: int, with_stats: bool) -> None:
        self.slice_len = slice_len
        self.with_stats = with_stats
        self._pending: list[_Pending] = []
        # Recently summarised tensors -> their pending results (exact identity).
        self._recent: OrderedDict[tuple, tuple[torch.Tensor, _Pending]] = OrderedDict()
        # Recently reduced data -> (min, max, sum, sum of squares), shared by views.
        self._recent_stats: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def summarise(
        self, name: str, tensor: torch.Tensor, rearranges: torch.Tensor | None = None
    ) -> TensorSummary:
        """A summary of ``tensor`` whose values arrive at ``flush``.

        ``rearranges``: a tensor holding the same numbers in another order
        (``tensor`` is its permute or roll); its reductions are reused.
        """
        data = tensor.detach() if tensor.requires_grad else tensor
        is_mask = name in MASK_NAMES
        shape, device, dtype = data.shape, data.device, data.dtype
        summary = TensorSummary(
            name, list(shape), _dtype_name(dtype), _device_name(device), slice_index(len(shape), self.slice_len),
        )
        key = (data.data_ptr(), data.storage_offset(), shape, data.stride(), dtype, device, _version(data), is_mask)
        remembered = self._recent.get(key)
        if remembered is None:
            head = self._head(data, device.type == "cpu" and dtype in _NUMPY_DTYPES)
            stats = None
            if self.with_stats and data.numel():
                stats = self._reductions(data if rearranges is None else rearranges.detach())
            masked = torch.count_nonzero(data) if is_mask else None
            pending = _Pending(head, stats, masked)
            self._pending.append(pending)
            _remember(self._recent, key, (data, pending))
        else:
            pending = remembered[1]
        pending.summaries.append(summary)
        return summary

    def whole(self, name: str, tensor: torch.Tensor) -> TensorSummary:
        """A summary holding every value of a small tensor (pictures' extra data)."""
        data = tensor.detach()
        summary = TensorSummary(name, list(data.shape), _dtype_name(data.dtype), str(data.device), "")
        pending = _Pending(data.clone(), None, None, [summary])
        self._pending.append(pending)
        return summary

    def _head(self, data: torch.Tensor, via_numpy: bool) -> torch.Tensor | np.ndarray:
        """A copy of ``data[:n, :n, ...]``: numpy on the CPU (cheaper), torch elsewhere."""
        index = (slice(0, self.slice_len),) * data.ndim
        if via_numpy:
            return data.numpy()[index].copy()
        return data[index].clone()

    def _reductions(self, data: torch.Tensor) -> torch.Tensor:
        """(min, max, sum, sum of squares) on the device, shared by views of the same data.

        A contiguous reshape (``x.view(B, H, W, C)``) holds the same numbers as
        its source, so its reductions are taken from the earlier summary.
        The sum of squares is one BLAS dot product: an order of magnitude
        cheaper than ``std_mean`` on a CPU.
        """
        key = _values_key(data)
        remembered = self._recent_stats.get(key)
        if remembered is not None:
            return remembered[1]
        values = data if data.dtype in _REDUCIBLE else data.float()
        flat = values.reshape(-1)  # numel
        low, high = torch.aminmax(flat)
        stats = torch.stack([low, high, flat.sum(), torch.dot(flat, flat)])
        _remember(self._recent_stats, key, (data, stats))
        return stats

    def flush(self) -> None:
        """Move everything to the host in a few transfers and fill the summaries."""
        pending, self._pending = self._pending, []
        self._recent.clear()
        self._recent_stats.clear()
        if not pending:
            return
        on_device: dict[tuple[torch.dtype, torch.device], list[_Pending]] = {}
        for item in pending:
            if isinstance(item.slice_, np.ndarray):
                _fill_values(item, item.slice_)
            else:
                on_device.setdefault((item.slice_.dtype, item.slice_.device), []).append(item)
        for items in on_device.values():
            flat = torch.cat([item.slice_.reshape(-1) for item in items]).cpu()  # one transfer
            for item, part in zip(items, flat.split([i.slice_.numel() for i in items])):
                _fill_values(item, _to_numpy(part.reshape(item.slice_.shape)))
        with_stats = [item for item in pending if item.stats is not None]
        if with_stats:
            host = _stack_to_host([item.stats for item in with_stats]).double()
            for item, row in zip(with_stats, host.tolist()):
                stats = _finish_stats(row, item.summaries[0].shape)
                for summary in item.summaries:
                    summary.stats = stats
        with_masked = [item for item in pending if item.masked is not None]
        if with_masked:
            counts = _stack_to_host([item.masked for item in with_masked]).tolist()
            for item, count in zip(with_masked, counts):
                for summary in item.summaries:
                    summary.masked = int(count)


_REDUCIBLE = (torch.float32, torch.float64)
# dtypes whose CPU slices are copied through numpy (bfloat16 has no numpy twin).
_NUMPY_DTYPES = frozenset(
    {torch.float16, torch.float32, torch.float64, torch.int64, torch.int32, torch.int16,
     torch.int8, torch.uint8, torch.bool}
)


@functools.lru_cache(maxsize=64)
def _dtype_name(dtype: torch.dtype) -> str:
    return dtype_name(dtype)


@functools.lru_cache(maxsize=64)
def _device_name(device: torch.device) -> str:
    return str(device)


def _remember(cache: OrderedDict, key: tuple, value: tuple) -> None:
    cache[key] = value
    if len(cache) > _RECENT:
        cache.popitem(last=False)


def _identity(data: torch.Tensor) -> tuple:
    """Equal for the same tensor (or an identical view) with unchanged contents."""
    return (
        data.data_ptr(), data.storage_offset(), data.shape, data.stride(), data.dtype,
        data.device, _version(data),
    )


def _values_key(data: torch.Tensor) -> tuple:
    """Like ``_identity``, but equal for all contiguous views of the same elements."""
    if data.is_contiguous():
        return (data.data_ptr(), data.storage_offset(), data.numel(), data.dtype, data.device,
                _version(data))
    return _identity(data)


def _fill_values(item: _Pending, values: np.ndarray) -> None:
    for summary in item.summaries:
        summary.array = values


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A host tensor as numpy (bfloat16, which numpy lacks, as float32: exact)."""
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def _version(data: torch.Tensor) -> int | None:
    """The in-place version counter; inference-mode tensors have none."""
    return None if data.is_inference() else data._version


def _finish_stats(row: list[float], shape: list[int]) -> dict[str, float]:
    """min, max, mean, std (population) from (min, max, sum, sum of squares)."""
    low, high, total, squares = row
    count = math.prod(shape)
    mean = total / count
    variance = max(squares / count - mean * mean, 0.0)
    return {"min": low, "max": high, "mean": mean, "std": math.sqrt(variance)}


def _stack_to_host(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack same-shaped small tensors, possibly on several devices, and move them once."""
    by_device: dict[torch.device, list[int]] = {}
    for position, tensor in enumerate(tensors):
        by_device.setdefault(tensor.device, []).append(position)
    result: list[torch.Tensor | None] = [None] * len(tensors)
    for positions in by_device.values():
        host = torch.stack([tensors[p] for p in positions]).cpu()
        for position, row in zip(positions, host):
            result[position] = row
    return torch.stack(result)  # type: ignore[arg-type]
