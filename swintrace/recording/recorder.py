"""The recorder behind ``tracing()``: scope entries, steps and exits -> events.

While the forward runs, the recorder does only what cannot wait: it copies
each tensor's slice (and reduces it, when statistics are asked for) and
appends one compact record per enter, step and exit. When the forward ends it
takes the reprs of the modules shown and hands the records to the trace,
which builds the ``Event`` objects (dotted ids, code lines) the first time
they are read (records.py). Interleaved with the model's tensor work the same
Python ran several times slower (the tensors push the interpreter's data out
of the CPU caches), so doing little during the forward is what keeps tracing
cheap. Steps are recorded in call order and ids are given in that order
either way, so a trace is the same whichever moment builds it.

Three options need a step's id while the forward runs (``keep`` decides
whether to record it at all, ``capture`` and pictures pick steps by id);
with any of them, ids are given at record time instead, in the same order.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import UserError
from ..source import display_path, first_doc_line
from ..trace.events import Trace
from .capture import PictureOptions
from .records import EnterRecord, ExitRecord, Ids, Record, Scope, StepRecord, build_events
from .summary import Summary, SummaryBatch

if TYPE_CHECKING:
    from .tracing import TraceOptions

# The recorder of the current context (thread, asyncio task); None outside tracing().
_RECORDER: ContextVar[Recorder | None] = ContextVar("swintrace_recorder", default=None)
_compiling = torch.compiler.is_compiling


def current_recorder() -> Recorder | None:
    """The active recorder, or None: outside tracing(), and inside torch.compile.

    A compiled forward is never traced (torch.compile cannot follow a context
    variable, and tracing needs the Python code to run step by step); checking
    that first keeps the compiled graph whole.
    """
    if _compiling():
        return None
    return _RECORDER.get()


def is_tracing() -> bool:
    """Whether a tracing context is active in the current context."""
    return current_recorder() is not None


def step(
    kind: str,
    /,
    *modules: nn.Module,
    name: str | None = None,
    note: str | None = None,
    rearranges: torch.Tensor | None = None,
    **values: Any,
) -> None:
    """Record one step of the walkthrough (no-op outside ``tracing()``).

    ``kind`` is the vocabulary key (``softmax``); ``modules`` are submodules
    whose repr the step shows, labelled ``self.<attribute>``; ``name`` is the
    last part of the dotted id when it differs from the kind; ``note`` a
    vocabulary note key for a skipped branch; ``rearranges`` names the tensor
    whose numbers this step's tensors only reorder (a permute, a roll), so
    their statistics are reused instead of recomputed. ``values`` may be tensors
    (summarised), numbers, strings, sequences or None; a None whose name is a
    module slot of the current module (``downsample=None``) shows as a module.
    """
    recorder = current_recorder()
    if recorder is None:
        return
    recorder.record_step(kind, name or kind, note, rearranges, modules, values, sys._getframe(1))


class Recorder:
    """Records the forward passes of one ``tracing()`` block into its trace."""

    def __init__(self, trace: Trace, options: TraceOptions, pictures: PictureOptions | None) -> None:
        self.trace = trace
        self.options = options
        self.stack: list[Scope] = []
        self.records: list[Record] = []
        # The modules this forward's steps show (their reprs are taken when it ends).
        self.shown: list[nn.Module] = []
        self.call = -1
        self.ids = Ids()
        self.module_names: dict[int, str] = {}
        # id(module) -> what its scopes need (see _module_scope), per root module.
        self.module_scopes: dict[int, tuple] = {}
        self.root: object = None
        self.reprs: dict[int, str] = {}
        self.batch = SummaryBatch(options.slice_len, options.stats)
        self.pictures = pictures
        # What the root model's pictures take from its steps (its picture_capture), per root model.
        self.capture: Any = None
        # Ids are needed during the forward by keep, capture and pictures.
        self.ids_now = bool(options.keep or options.capture or pictures)
        self.started = 0.0
        self.timings: list[dict[str, Any]] = []
        # Each forward's top-k (probabilities, indices), whole: filled on the host with the summaries.
        # (probabilities, indices, class labels) of each forward's top-k; the footer keeps the first's
        self.predictions: list[tuple[Summary, Summary, Any]] = []
        self.captured_bytes = 0
        # With tracing(backward=True): hooks the gradients of the steps' tensors (backward.py).
        self.backward: Any = None

    # -- scopes ---------------------------------------------------------------
    def run_scope(self, owner: object, call: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """Run ``call`` as a scope of ``owner`` (an instrumented module or a traced function)."""
        stack = self.stack
        is_root = not stack
        if is_root:
            self._begin_call(owner, args)
        parent = stack[-1] if stack else None
        if isinstance(owner, nn.Module):
            known = self.module_scopes.get(id(owner))
            if known is None:
                known = self.module_scopes[id(owner)] = self._module_scope(owner)
            kind, source, doc, base, slots, labels = known
            scope = Scope(base, parent, slots, labels)
        else:
            kind, source, doc = _describe(owner)
            slots, labels = (parent.slots, parent.labels) if parent else ({}, {})
            scope = Scope(None, parent, slots, labels)
        if self.ids_now:
            self.ids.name_scope(scope, kind)
        records = self.records
        depth = len(stack)
        records.append(EnterRecord(scope=scope, kind=kind, depth=depth, source=source, doc=doc))
        stack.append(scope)
        try:
            output = call(*args, **kwargs)
            if is_root and self.options.topk and hasattr(owner, "describe"):
                self._record_prediction(output)
        finally:
            stack.pop()
            records.append(ExitRecord(scope=scope, kind=kind, depth=depth))
            if is_root:
                self._end_call()
        return output

    def _module_scope(self, module: nn.Module) -> tuple:
        """(kind, source, doc, dotted name, {slot: submodule}, {id(submodule): slot}) of a module."""
        kind, source, doc = _describe(type(module))
        slots = module._modules
        return kind, source, doc, self.module_names.get(id(module)), slots, {id(m): k for k, m in slots.items()}

    def _begin_call(self, owner: object, args: tuple) -> None:
        self.call += 1
        self.ids = Ids()
        if self.root is not owner:  # the module tree is the same for every forward of one model
            self.root = owner
            self.module_scopes = {}
            self.module_names = _module_names(owner) if isinstance(owner, nn.Module) else {}
            if self.pictures is not None and hasattr(owner, "picture_capture"):
                self.capture = owner.picture_capture(self.pictures, self.batch, self.trace)
        if self.backward is not None and isinstance(owner, nn.Module):
            self.backward.watch_parameters(owner)
        self.started = time.perf_counter()
        if "model" not in self.trace.header and hasattr(owner, "describe"):
            self.trace.header.update(owner.describe())
        if args and isinstance(args[0], torch.Tensor):
            described = self.trace.header.setdefault("input", {})
            described.setdefault("shape", list(args[0].shape))
            described.setdefault("dtype", str(args[0].dtype).removeprefix("torch."))
            described.setdefault("device", str(args[0].device))

    def _end_call(self) -> None:
        self.batch.flush()
        self._hand_over()
        for key, tensor in self.trace.captured.items():
            if tensor.device.type != "cpu":
                self.trace.captured[key] = tensor.cpu()
        self.timings.append({"call": self.call, "seconds": time.perf_counter() - self.started})

    # -- steps ----------------------------------------------------------------
    def record_step(
        self,
        kind: str,
        name: str,
        note: str | None,
        rearranges: torch.Tensor | None,
        modules: tuple[nn.Module, ...],
        values: dict[str, Any],
        frame: Any,
    ) -> None:
        """Record one step; ``values`` (the step's own keyword dict) keeps summaries, not tensors.

        ``frame``: the caller's frame, whose lines the step shows (None: no code)."""
        stack = self.stack
        if not stack:
            return
        scope = stack[-1]
        step_id = None
        arrays = None
        capturing = False
        if self.ids_now:
            step_id = self.ids.step_id(scope, name)
            options = self.options
            if options.keep and not options.keeps(step_id, kind):
                return
            capturing = bool(options.capture) and options.captures(step_id)
            if self.capture is not None:
                arrays = self.capture.on_step(step_id, kind, values)
        if capturing:
            for key, value in values.items():
                if isinstance(value, torch.Tensor):
                    self._capture(step_id, key, value)
        if self.backward is not None:  # before the values become summaries
            self.backward.watch(self.call, step_id, kind, len(stack), values,
                                getattr(self.capture, "on_grad", None))
        self.batch.summarise_values(values, rearranges)
        self.shown.extend(modules)
        self.shown.extend(value for value in values.values() if isinstance(value, nn.Module))
        self.records.append(StepRecord(
            scope=scope, name=name, kind=kind, depth=len(stack), note=note,
            code=frame.f_code if frame is not None else None, offset=frame.f_lasti if frame is not None else 0, modules=modules, values=values, step_id=step_id, arrays=arrays,
        ))

    def _capture(self, step_id: str, name: str, tensor: torch.Tensor) -> None:
        """Keep a whole tensor (moved to the host when the forward ends)."""
        self.captured_bytes += tensor.numel() * tensor.element_size()
        if self.captured_bytes > self.options.capture_limit:
            raise UserError.of("capture_limit", tensor=f"{step_id}/{name}", size=_size(self.captured_bytes),
                               limit=_size(self.options.capture_limit))
        self.trace.captured[f"{step_id}/{name}"] = tensor.detach().clone()

    def _record_prediction(self, logits: Any) -> None:
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            return
        probabilities = logits.detach().float().softmax(dim=-1)  # B, num_classes
        top_probabilities, top_indices = probabilities.topk(
            min(self.options.topk, probabilities.shape[-1]), dim=-1
        )  # B, k
        # The tracer's reading of the logits, not a line of the model: the step shows no code.
        self.record_step("topk", "topk", None, None, (), {"probabilities": top_probabilities,
                                                          "indices": top_indices}, None)
        labels = getattr(self.root, "class_labels", None)
        self.predictions.append((self.batch.whole(top_probabilities), self.batch.whole(top_indices), labels))

    # -- events ---------------------------------------------------------------
    def _hand_over(self) -> None:
        """Give this forward's records to the trace, which builds events when they are read.

        Module reprs are taken now: a module changed after the forward must
        not change what the trace says ran.
        """
        records, self.records = self.records, []
        for module in self.shown:
            if id(module) not in self.reprs:
                self.reprs[id(module)] = repr(module)
        self.shown.clear()
        self.trace.defer(functools.partial(build_events, records=records, call=self.call, ids=self.ids, reprs=self.reprs))

    # -- end ------------------------------------------------------------------
    def close(self) -> None:
        """Write the footer: top-k predictions of the first forward (the one every view shows,
        ``Trace.shown``) and timings."""
        footer: dict[str, Any] = {"timings": self.timings}
        if self.predictions:
            # The model hands its class names in (load_model gives ImageNet's to 1000-class heads).
            top_probabilities, top_indices, labels = self.predictions[0]
            footer["topk"] = [
                [
                    {"index": index, "label": labels[index] if labels else f"class {index}", "probability": p}
                    for index, p in zip(indices, probabilities)
                ]
                for indices, probabilities in zip(top_indices.array.tolist(), top_probabilities.array.tolist())
            ]
        self.trace.footer = footer


def _module_names(root: nn.Module) -> dict[int, str]:
    """id(module) -> dotted name, as ``named_modules()`` gives them (first path wins), faster."""
    names = {id(root): ""}

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module._modules.items():
            if child is not None and id(child) not in names:
                path = f"{prefix}.{name}" if prefix else name
                names[id(child)] = path
                visit(child, path)

    visit(root, "")
    return names


@functools.lru_cache(maxsize=512)
def _describe(owner: object) -> tuple[str, str | None, str | None]:
    """(kind, ``file:line`` of the forward or function, first docstring line) of a scope's owner.

    ``owner`` is a module class or a traced function: both are fixed, so cached.
    """
    target = owner.forward if isinstance(owner, type) else owner
    target = getattr(target, "__wrapped__", target)
    code = getattr(target, "__code__", None)
    source = f"{display_path(code.co_filename)}:{code.co_firstlineno}" if code else None
    return owner.__name__, source, first_doc_line(owner)


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 2**10:.1f} KiB"
