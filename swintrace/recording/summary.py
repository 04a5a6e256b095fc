"""Tensor summaries: the seed-style slice, and on request whole-tensor statistics.

A summary is taken while the forward runs. On the CPU it is complete when
``SummaryBatch.summarise`` returns: the slice is a numpy copy, and the
statistics (when asked for) are a few reductions read at once; there is no
device to wait for. On an accelerator nothing is read back during the
forward: the slice copy and the reductions stay on the device as small
tensors, and ``SummaryBatch.flush`` moves all of them to the host after the
forward, one transfer per dtype, and fills the summaries.

The same tensor shown by consecutive steps (a scope's output, then the next
step's input) is summarised once; a reshape or permute of it reuses its
statistics, since they hold the same numbers.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..trace.events import TensorSummary

# Tensors with these names are attention masks: their summary counts masked entries.
MASK_NAMES = frozenset({"mask", "attn_mask"})
# How many recently summarised tensors are remembered. Entries hold weak
# references: keeping tensors alive would hold memory the model's allocator
# wants back, and a dead reference simply means "not seen".
_RECENT = 16
# CPU tensors up to this many elements are reduced by numpy: a numpy call costs
# a few microseconds less than a torch one, which is all a small tensor costs.
_NUMPY_STATS_MAX = 1 << 15
_REDUCIBLE = (torch.float32, torch.float64)
# dtypes whose CPU slices are copied through numpy (bfloat16 has no numpy twin).
_NUMPY_DTYPES = frozenset(
    {torch.float16, torch.float32, torch.float64, torch.int64, torch.int32, torch.int16,
     torch.int8, torch.uint8, torch.bool}
)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@functools.lru_cache(maxsize=64)
def slice_index(ndim: int, length: int) -> str:
    """The slice expression the seed prints: ``[:3,:3,:3]`` for a 3-D tensor."""
    return "[" + ",".join(f":{length}" for _ in range(ndim)) + "]" if ndim else ""


class Summary:
    """What is kept of one tensor, shared by every step that shows the same tensor.

    ``named(name)`` gives the ``TensorSummary`` an event holds. On an
    accelerator ``array``, ``stats`` and ``masked`` are filled by ``flush``.

    On the CPU the slice is kept as bytes (``raw``) until first read: a
    Python ``bytes`` object this small lives in Python's own memory pools,
    while hundreds of small numpy buffers made during the forward sat between
    the model's large tensors in the C heap and kept it from shrinking
    (bench/memory.py: swin_l_384's peak went from 1.0x to 1.8x untraced).
    """

    __slots__ = ("shape", "dtype", "device", "index", "_array", "raw", "stats", "masked")

    def __init__(
        self, shape: Sequence[int], dtype: str, device: str, index: str, array: np.ndarray | None = None
    ) -> None:
        self.shape = shape
        self.dtype = dtype
        self.device = device
        self.index = index
        self._array = array
        # (bytes, slice shape, numpy dtype) of a CPU slice not read yet.
        self.raw: tuple[bytes, tuple[int, ...], np.dtype] | None = None
        self.stats: dict[str, float] | None = None
        self.masked: int | None = None

    @property
    def array(self) -> np.ndarray | None:
        """The slice as a numpy array (read-only when it came from ``raw``)."""
        if self._array is None and self.raw is not None:
            data, slice_shape, dtype = self.raw
            self._array = np.frombuffer(data, dtype=dtype).reshape(slice_shape)
            self.raw = None
        return self._array

    @array.setter
    def array(self, value: np.ndarray | None) -> None:
        self._array = value

    def named(self, name: str) -> TensorSummary:
        return TensorSummary(
            name, list(self.shape), self.dtype, self.device, self.index, self.array, self.stats, self.masked
        )


@dataclass
class _Pending:
    """Device-side results for one summary, waiting for ``flush``.

    ``stats`` is (min, max, sum, sum of squares); mean and std follow on the host.
    """

    summary: Summary
    slice_: torch.Tensor
    stats: torch.Tensor | None
    masked: torch.Tensor | None


class SummaryBatch:
    """The summaries of one forward pass (device-side ones wait for ``flush``)."""

    # On the CPU a summary is completed at once (nothing to wait for). False treats CPU
    # tensors as a device's: the path a CUDA run takes, which tests check on a CPU.
    cpu_at_once = True

    def __init__(self, slice_len: int, with_stats: bool) -> None:
        self.slice_len = slice_len
        self.with_stats = with_stats
        self._pending: list[_Pending] = []
        # Recently summarised tensor objects: id -> (weak ref, version, summary).
        # Consecutive steps often show the very same tensor object (a scope's
        # output is the caller's next value; eval-mode dropout returns its input).
        self._recent: dict[int, tuple[weakref.ref, int | None, Summary]] = {}
        # Attention masks, all of this forward: a stage's cached mask is shown by
        # each of its blocks, and counting its masked entries is not free.
        self._masks: dict[int, tuple[weakref.ref, int | None, Summary]] = {}
        # Recently reduced data (any view of the same elements) -> (weak ref, statistics).
        # While the referenced tensor lives, its storage (and address) cannot be reused.
        self._recent_stats: dict[tuple, tuple[weakref.ref, Any]] = {}
        # (dtype, ndim[, device unless the CPU]) -> (dtype name, device name, index text, slices).
        self._layouts: dict[tuple, tuple[str, str, str, tuple[slice, ...]]] = {}

    def summarise_values(self, values: dict[str, Any], rearranges: torch.Tensor | None = None) -> None:
        """Replace a step's values in place: tensors by summaries, other values by plain copies.

        Modules and None stay.
        """
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                values[key] = self.summarise(key, value, rearranges)
            elif value is not None and not isinstance(value, nn.Module):
                values[key] = plain(value)  # a copy: the caller may change its list later

    def summarise(
        self, name: str, tensor: torch.Tensor, rearranges: torch.Tensor | None = None
    ) -> Summary:
        """A summary of ``tensor`` (on an accelerator its numbers arrive at ``flush``).

        ``name`` marks attention masks (``mask``, ``attn_mask``), whose masked
        entries are counted. ``rearranges``: a tensor holding the same numbers
        in another order (``tensor`` is its roll); its statistics are reused.
        """
        is_mask = name in MASK_NAMES
        seen_before = self._masks if is_mask else self._recent
        key = id(tensor)
        seen = seen_before.get(key)
        # A remembered version of None means an inference tensor (no version counter).
        if seen is not None and seen[0]() is tensor and (seen[1] is None or seen[1] == tensor._version):
            return seen[2]
        stats = None
        if self.with_stats and tensor.numel():
            owner = tensor if rearranges is None else rearranges
            source = owner.detach()
            stats = self._statistics(owner, source, source.is_cpu and self.cpu_at_once)
        summary = self._summary(tensor, is_mask, stats)
        seen_before[key] = (weakref.ref(tensor), _version(tensor), summary)
        if len(seen_before) > _RECENT and not is_mask:
            del seen_before[next(iter(seen_before))]  # the oldest
        return summary

    def _summary(self, tensor: torch.Tensor, is_mask: bool, stats: Any) -> Summary:
        """The summary of any tensor (on an accelerator, completed by ``flush``).

        ``stats``: what ``_statistics`` gave (a dict on the host, a device tensor otherwise).
        """
        data = tensor.detach()
        on_host = data.is_cpu and self.cpu_at_once
        layout = (data.dtype, data.dim()) if on_host else (data.dtype, data.dim(), data.device)
        dtype, device, index, slices = self._layouts.get(layout) or self._layout(layout)
        if on_host:
            summary = Summary(data.shape, dtype, device, index)
            chunk = data.numpy()[slices] if layout[0] in _NUMPY_DTYPES else _to_numpy(data[slices].clone())
            summary.raw = (chunk.tobytes(), chunk.shape, chunk.dtype)  # see Summary
            summary.stats = stats
            if is_mask:
                summary.masked = int(torch.count_nonzero(data))
        else:
            summary = Summary(data.shape, dtype, device, index)
            self._pending.append(_Pending(
                summary, data[slices].clone(), stats, torch.count_nonzero(data) if is_mask else None,
            ))
        return summary

    def _layout(self, layout: tuple) -> tuple[str, str, str, tuple[slice, ...]]:
        dtype, ndim, device = layout if len(layout) == 3 else (*layout, "cpu")
        known = self._layouts[layout] = (
            _dtype_name(dtype), str(device),
            slice_index(ndim, self.slice_len), (slice(0, self.slice_len),) * ndim,
        )
        return known

    def whole(self, tensor: torch.Tensor) -> Summary:
        """A summary holding every value of a small tensor (pictures' extra data)."""
        data = tensor.detach()
        summary = Summary(list(data.shape), _dtype_name(data.dtype), str(data.device), "")
        if data.is_cpu and self.cpu_at_once:
            summary.array = _to_numpy(data.clone())
        else:
            self._pending.append(_Pending(summary, data.clone(), None, None))
        return summary

    def _statistics(self, owner: torch.Tensor, data: torch.Tensor, on_host: bool) -> Any:
        """min, max, mean, std of ``data``, shared by all views of the same elements.

        ``owner`` is the step's tensor object that ``data`` detaches (or itself).

        On the host: the finished dict. On a device: a (min, max, sum, sum of
        squares) tensor left there for ``flush``. The sum of squares is one
        BLAS dot product, far cheaper than ``std_mean`` on a CPU.
        """
        key = _values_key(data)
        remembered = self._recent_stats.get(key)
        if remembered is not None and remembered[0]() is not None:
            return remembered[1]
        flat = _flat_values(data)  # numel
        if not on_host:
            low, high = torch.aminmax(flat)
            # The count of NaN and infinite entries rides along (one more reduction, no sync).
            stats: Any = torch.stack([low, high, flat.sum(), torch.dot(flat, flat),
                                      torch.isfinite(flat).logical_not().sum().to(flat.dtype)])
        elif flat.numel() <= _NUMPY_STATS_MAX:
            values = flat.numpy()
            stats = _finish_stats(
                (values.min(), values.max(), values.sum(dtype=np.float64), values.dot(values)),
                flat.numel(),
            )
        else:
            low, high = torch.aminmax(flat)
            stats = _finish_stats(
                (low.item(), high.item(), flat.sum().item(), torch.dot(flat, flat).item()),
                flat.numel(),
            )
        if on_host and not math.isfinite(stats["mean"] + stats["min"] + stats["max"]):
            stats["nonfinite"] = int(torch.isfinite(flat).logical_not().sum())  # only when there are any
        _remember(self._recent_stats, key, (weakref.ref(owner), stats))
        return stats

    def flush(self) -> None:
        """Move the device-side results to the host, one transfer per device, and fill the summaries."""
        pending, self._pending = self._pending, []
        self._recent.clear()
        self._masks.clear()
        self._recent_stats.clear()
        if not pending:
            return
        parts = [item.slice_ for item in pending]
        parts += [item.stats for item in pending if item.stats is not None]
        parts += [item.masked for item in pending if item.masked is not None]
        host = iter(_to_host(parts))
        for item in pending:
            item.summary.array = _to_numpy(next(host))
        for item in pending:
            if item.stats is not None:
                item.summary.stats = _finish_stats(next(host).double().tolist(), math.prod(item.summary.shape))
        for item in pending:
            if item.masked is not None:
                item.summary.masked = int(next(host).tolist())  # a host tensor: no sync


def plain(value: Any) -> Any:
    """A JSON-friendly copy of a step's non-tensor value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (torch.Size, tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, torch.dtype):
        return dtype_name(value)
    return repr(value)


@functools.lru_cache(maxsize=64)
def _dtype_name(dtype: torch.dtype) -> str:
    return dtype_name(dtype)


def _remember(cache: dict, key: Any, value: tuple) -> None:
    cache[key] = value
    if len(cache) > _RECENT:
        del cache[next(iter(cache))]  # the oldest entry


def _version(data: torch.Tensor) -> int | None:
    """The in-place version counter; inference-mode tensors have none."""
    return None if data.is_inference() else data._version


def _is_dense(data: torch.Tensor) -> bool:
    """Whether ``data`` covers a gap-free block of its storage (e.g. a permuted contiguous tensor)."""
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(data.stride(), data.shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _values_key(data: torch.Tensor) -> tuple:
    """Equal for all views holding the same elements in any order, with unchanged contents."""
    if data.is_contiguous() or _is_dense(data):
        return (data.data_ptr(), data.numel(), data.dtype, _version(data))
    return (data.data_ptr(), data.shape, data.stride(), data.dtype, _version(data))


def _flat_values(data: torch.Tensor) -> torch.Tensor:
    """The elements of ``data`` as one float vector, in storage order.

    A dense permuted tensor is read where it lies (no copy; its lowest
    address is element 0, strides being non-negative). Any other layout is
    copied: a copy plus contiguous reductions beats strided reductions.
    """
    values = data if data.dtype in _REDUCIBLE else data.float()
    if values.is_contiguous():
        return values.view(-1)  # numel
    if _is_dense(values):
        return values.as_strided((values.numel(),), (1,))  # numel, storage order
    return values.reshape(-1)  # numel (a copy)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A host tensor as numpy (bfloat16, which numpy lacks, as float32: exact)."""
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def _finish_stats(row: Any, count: int) -> dict[str, float]:
    """min, max, mean, std (population) from (min, max, sum, sum of squares[, non-finite count]).

    The std is sqrt(E[x^2] - E[x]^2) from the sums: exact enough to read,
    approximate for data whose spread is tiny next to its mean (0 for constant data). ``nonfinite``
    (NaN and infinite entries) is kept only when there are any.
    """
    low, high, total, squares = (float(value) for value in row[:4])
    mean = total / count
    variance = squares / count - mean * mean
    # A population std is at most half the range: the bound keeps cancellation off constant data.
    std = min(math.sqrt(max(variance, 0.0)), (high - low) / 2) if math.isfinite(variance) else math.nan
    stats: dict[str, Any] = {"min": low, "max": high, "mean": mean, "std": std}
    if len(row) > 4 and row[4]:
        stats["nonfinite"] = int(row[4])
    return stats


def _to_host(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The same tensors on the host, moved in one transfer per device.

    Every tensor's bytes are laid end to end in one uint8 buffer (any dtype, exactly),
    which crosses to the host at once; the parts are then viewed back as their dtypes.
    """
    result: list[torch.Tensor | None] = [None] * len(tensors)
    by_device: dict[torch.device, list[int]] = {}
    for position, tensor in enumerate(tensors):
        by_device.setdefault(tensor.device, []).append(position)
    for positions in by_device.values():
        flat = [tensors[p].reshape(-1) for p in positions]  # numel each
        blob = torch.cat([part.view(torch.uint8) for part in flat]).cpu()  # bytes, the one transfer
        offset = 0
        for position, part in zip(positions, flat):
            size = part.numel() * part.element_size()
            # A copy of the bytes starts aligned for any dtype.
            result[position] = blob[offset:offset + size].clone().view(part.dtype).reshape(tensors[position].shape)
            offset += size
    return result  # type: ignore[return-value]
