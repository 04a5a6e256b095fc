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
