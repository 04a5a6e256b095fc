"""Recording a backward pass: the gradient of every traced step's tensors, and of chosen parameters.

``tracing(backward=True)`` hands a ``BackwardRecorder`` to the forward's recorder. While
the forward runs, each step tensor that requires a gradient gets a tensor hook
(``register_hook``); the model's lesson parameters (its ``gradient_parameters()``: the
relative position bias tables, qkv, the patch embedding, the head) get one too. When the
user's backward runs inside the block, autograd calls the hooks in the order it visits the
tensors, and each hook summarises the gradient it is handed (slice, statistics) exactly as
the forward summarises values. A hook only reads: it returns None, so autograd uses the
gradient unchanged, and the results of an untraced ``loss.backward()`` are bit-identical.

On a device the summaries stay there and cross to the host in one transfer when the block
ends (``close``); nothing is read back while the backward runs.

A tensor shown by several steps (a block's output is the next block's input) has one hook;
its gradient is listed under each of those steps, the latest first, as autograd meets them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from ..trace.events import Event, Trace
from .summary import Summary, SummaryBatch

# The kind of a parameter's gradient event, and whether its gradient is kept whole.
ParameterRoles = dict[str, tuple[str, bool]]
GRAD_SUFFIX = ".grad"  # captured gradients: trace.tensor(step_id, name + GRAD_SUFFIX)


class _Consumer(NamedTuple):
    """A step showing a watched tensor."""

    call: int
    step_id: str
    kind: str
    depth: int
    name: str


class _Watched:
    """A tensor with a hook: the steps that show it (forward order)."""

    __slots__ = ("ref", "consumers", "arrays")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.ref = weakref.ref(tensor)
        self.consumers: list[_Consumer] = []
        # Picks whole small arrays out of the gradient for pictures: grad -> [(name, tensor)].
        self.arrays: list[Callable[[torch.Tensor], list[tuple[str, torch.Tensor]]]] = []


class _GradRecord(NamedTuple):
    """A gradient a hook handed over: of a step's tensor, or of a parameter (``step`` None)."""

    consumer: _Consumer | None
    parameter: str | None
    kind: str
    summary: Summary
    arrays: list[tuple[str, Summary]]


class BackwardRecorder:
    """The gradients of one ``tracing(backward=True)`` block, in the order autograd makes them."""

    def __init__(self, trace: Trace, slice_len: int, stats: bool,
                 capture: Callable[[str, str, torch.Tensor], None], captures: Callable[[str], bool]) -> None:
        self.trace = trace
        self.batch = SummaryBatch(slice_len, stats)
        self.capture = capture
        self.captures = captures
        self.records: list[_GradRecord] = []
        self.handles: list[Any] = []
        self.watched: dict[int, _Watched] = {}
        self.roots: set[int] = set()
        self.closed = False

    # -- during the forward ---------------------------------------------------------------
    def watch_parameters(self, root: nn.Module) -> None:
        """Hook the root model's lesson parameters (once per model)."""
        if id(root) in self.roots:
            return
        self.roots.add(id(root))
        roles: ParameterRoles = root.gradient_parameters() if hasattr(root, "gradient_parameters") else {}
        for name, parameter in root.named_parameters():
            if name in roles and parameter.requires_grad:
                kind, whole = roles[name]
                self.handles.append(parameter.register_hook(
                    lambda grad, _name=name, _kind=kind, _whole=whole: self._on_parameter(_name, _kind, _whole, grad)))

    def watch(self, call: int, step_id: str, kind: str, depth: int, values: dict[str, Any],
              arrays: Callable[[str, str], Any] | None = None) -> None:
        """Hook the step's tensors that take part in the gradient (before they become summaries).

        ``arrays(step_id, name)``: what whole small arrays pictures take from this tensor's gradient
        (a function of the gradient, or None). Parameters are watched by ``watch_parameters``."""
        for name, value in values.items():
            if not isinstance(value, torch.Tensor) or not value.requires_grad or value.grad_fn is None:
                continue
            known = self.watched.get(id(value))
            if known is None or known.ref() is not value:
                known = self.watched[id(value)] = _Watched(value)
                self.handles.append(value.register_hook(lambda grad, _known=known: self._on_grad(_known, grad)))
            known.consumers.append(_Consumer(call, step_id, kind, depth, name))
            pick = arrays(step_id, name) if arrays is not None else None
            if pick is not None:
                known.arrays.append(pick)

    # -- during the backward --------------------------------------------------------------
    def _on_grad(self, known: _Watched, grad: torch.Tensor) -> None:
        """A step tensor's gradient: summarised (nothing read back on a device). Returns None."""
        if self.closed:
            return
        summary = self.batch.summarise("grad", grad)
        arrays = [(name, self.batch.whole(array)) for pick in known.arrays for name, array in pick(grad)]
        for consumer in reversed(known.consumers):  # the latest step first: autograd comes from there
            if self.captures(consumer.step_id):
                self.capture(consumer.step_id, consumer.name + GRAD_SUFFIX, grad)
            self.records.append(_GradRecord(consumer, None, consumer.kind, summary, arrays))
            arrays = []  # pictures' arrays go with the first step listing the gradient

    def _on_parameter(self, name: str, kind: str, whole: bool, grad: torch.Tensor) -> None:
        if self.closed:
            return
        arrays = [("grad", self.batch.whole(grad))] if whole else []
        self.records.append(_GradRecord(None, name, kind, self.batch.summarise("grad", grad), arrays))

    # -- at the end of the block -----------------------------------------------------------
    def close(self) -> None:
        """Remove every hook, move the summaries to the host and give the trace its backward events."""
        self.closed = True
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.watched.clear()
        self.batch.flush()
        for key, tensor in self.trace.captured.items():
            if tensor.device.type != "cpu":
                self.trace.captured[key] = tensor.cpu()
        self.trace.backward.extend(self._events())

    def _events(self) -> list[Event]:
        """One event per gradient and step showing it (``grad``), or per parameter (``param_grad``)."""
        events: list[Event] = []
        for record in self.records:
            arrays = [summary.named(name) for name, summary in record.arrays]
            if record.consumer is None:
                events.append(Event(seq=len(events), type="param_grad", id=record.parameter, kind=record.kind,
                                    depth=0, tensors=[record.summary.named("grad")], arrays=arrays))
                continue
            consumer = record.consumer
            previous = events[-1] if events else None
            if (previous is not None and previous.type == "grad" and previous.id == consumer.step_id
                    and previous.call == consumer.call and not arrays):
                previous.tensors.append(record.summary.named(consumer.name))  # same step, same moment
                continue
            events.append(Event(seq=len(events), type="grad", id=consumer.step_id, kind=consumer.kind,
                                depth=consumer.depth, call=consumer.call,
                                tensors=[record.summary.named(consumer.name)], arrays=arrays))
        return events
