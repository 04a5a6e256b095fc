"""No host sync per step: the path a CUDA run takes, checked on a CPU (our stand-in for a GPU).

``SummaryBatch.cpu_at_once = False`` sends CPU tensors down the device path. A
TorchDispatchMode sees every operator the traced forward runs: while the forward
runs, no operator may read a number back to the host (``aten._local_scalar_dense``,
what ``.item()``, ``int(t)`` and ``if t:`` do), and no tensor may be copied to the
host (``.cpu()``, ``.numpy()``, ``.tolist()``, patched to be counted); when it ends,
the results move to the host in a few batched transfers.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import swintrace
from swintrace.recording.summary import SummaryBatch


class _Watch(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.phase = "forward"
        self.reads: dict[str, list[str]] = {"forward": [], "end": []}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads[self.phase].append("scalar read")
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("options", [{}, {"stats": True}, {"stats": True, "pictures": True}],
                         ids=["default", "stats", "stats+pictures"])
def test_the_device_path_reads_nothing_back_while_the_forward_runs(teach_model, monkeypatch, options):
    monkeypatch.setattr(SummaryBatch, "cpu_at_once", False)
    watch = _Watch()
    flush = SummaryBatch.flush

    def flush_at_the_end(self):
        watch.phase = "end"
        return flush(self)

    monkeypatch.setattr(SummaryBatch, "flush", flush_at_the_end)
    for name in ("cpu", "numpy", "tolist", "item"):
        method = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _method=method, **kwargs):
            watch.reads[watch.phase].append(_name)
            return _method(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), swintrace.tracing(**options) as trace:
        with watch:
            logits = teach_model(images)
    monkeypatch.undo()
    assert watch.reads["forward"] == []  # not one read-back in ~400 steps
    transfers = watch.reads["end"].count("cpu")
    assert transfers == 1  # every slice, statistic and mask count, in one buffer of bytes
    assert "scalar read" not in watch.reads["end"]
    # ... and the trace holds what the CPU path gives.
    with torch.no_grad(), swintrace.tracing(**options) as reference:
        assert torch.equal(teach_model(images), logits)
    compared = 0
    for event, expected in zip(trace.events, reference.events, strict=True):
        for summary, other in zip((*event.tensors, *event.arrays), (*expected.tensors, *expected.arrays), strict=True):
            # Statistics come from float32 sums on a device, float64 ones for small CPU tensors.
            if summary.stats is not None:
                assert summary.stats == pytest.approx(other.stats, rel=1e-4, abs=1e-5)
                compared += 1
            summary.stats = other.stats = None
        assert event == expected
    assert compared > 100 or not options.get("stats")


def test_the_device_path_reads_nothing_back_while_the_backward_runs(teach_model, monkeypatch):
    """tracing(backward=True): the gradients' summaries (and the bias tables' whole gradients)
    stay on the device while autograd runs the hooks, and cross in one transfer at the end."""
    import copy

    model = copy.deepcopy(teach_model)
    reference_model = copy.deepcopy(teach_model)
    monkeypatch.setattr(SummaryBatch, "cpu_at_once", False)
    watch = _Watch()
    flush = SummaryBatch.flush

    def flush_at_the_end(self):  # the forward's summaries when it ends, the backward's when the block does
        watch.phase = {"forward": "forward_end", "backward": "end"}.get(watch.phase, watch.phase)
        return flush(self)

    monkeypatch.setattr(SummaryBatch, "flush", flush_at_the_end)
    for name in ("cpu", "numpy", "tolist", "item"):
        method = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _method=method, **kwargs):
            watch.reads.setdefault(watch.phase, []).append(_name)
            return _method(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with swintrace.tracing(stats=True, pictures=True, backward=True) as trace:
        with watch:
            loss = torch.nn.functional.cross_entropy(model(images), torch.tensor([1, 2]))
            watch.phase = "backward"
            loss.backward()
    monkeypatch.undo()
    assert watch.reads["forward"] == [] and watch.reads.get("backward", []) == []
    assert watch.reads["forward_end"].count("cpu") == 1
    assert watch.reads["end"].count("cpu") == 1  # the backward's summaries, in one buffer of bytes
    assert "scalar read" not in watch.reads["end"]
    assert len(trace.backward) > 300
    # ... and the same gradients and summaries as the CPU path
    with swintrace.tracing(stats=True, pictures=True, backward=True) as reference:
        torch.nn.functional.cross_entropy(reference_model(images), torch.tensor([1, 2])).backward()
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(model.parameters(), reference_model.parameters()))
    for event, expected in zip(trace.backward, reference.backward, strict=True):
        for summary, other in zip((*event.tensors, *event.arrays), (*expected.tensors, *expected.arrays), strict=True):
            if summary.stats is not None:
                assert summary.stats == pytest.approx(other.stats, rel=1e-4, abs=1e-7)  # float32 sums
            summary.stats = other.stats = None
        assert event == expected
