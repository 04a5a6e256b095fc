"""Tensor summaries: slices, whole-tensor statistics, sharing between steps."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import swintrace
from swintrace.recording.summary import _NUMPY_STATS_MAX, Summary, SummaryBatch, _flat_values, _is_dense


def _expected(tensor: torch.Tensor) -> dict[str, float]:
    values = tensor.double()
    return {
        "min": values.min().item(), "max": values.max().item(),
        "mean": values.mean().item(), "std": values.std(correction=0).item(),
    }


def _close(stats: dict[str, float], expected: dict[str, float]) -> bool:
    return (
        stats["min"] == expected["min"] and stats["max"] == expected["max"]
        and stats["mean"] == pytest.approx(expected["mean"], abs=1e-5)
        and stats["std"] == pytest.approx(expected["std"], rel=1e-4)
    )


@pytest.mark.numeric
@pytest.mark.parametrize("numel", [12, _NUMPY_STATS_MAX + 7])  # the numpy path, then torch's
@pytest.mark.parametrize("layout", ["contiguous", "permuted", "strided", "int64"])
def test_statistics_are_those_of_the_whole_tensor(numel, layout):
    generator = torch.Generator().manual_seed(numel)
    base = torch.randn(3, numel // 3, 2, generator=generator) * 3 + 1  # 3, n, 2
    tensor = {
        "contiguous": base,
        "permuted": base.permute(2, 0, 1),  # dense: read in place
        "strided": base[:, ::2, :],  # not dense: copied
        "int64": (base * 10).long(),
    }[layout]
    summary = SummaryBatch(3, with_stats=True).summarise("x", tensor)
    assert _close(summary.stats, _expected(tensor))
    assert summary.named("x").shape == list(tensor.shape)
    assert summary.array.tolist() == tensor[:3, :3, :3].tolist()
    assert summary.index == "[:3,:3,:3]" and summary.dtype == str(tensor.dtype).removeprefix("torch.")


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    step=st.integers(1, 2),
    data=st.data(),
)
def test_dense_detection_and_flat_values(shape, step, data):
    """Dense means the elements fill a gap-free block of storage; the flat values are the elements."""
    base = torch.arange(float(torch.Size(shape).numel())).reshape(shape)
    dims = data.draw(st.permutations(list(range(len(shape)))))
    tensor = base.permute(dims)[(slice(None, None, step),)]
    offsets = sorted(int(v) for v in tensor.reshape(-1).tolist())  # base holds its own offsets
    dense = offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    assert _is_dense(tensor) == dense
    flat = _flat_values(tensor)
    assert flat.ndim == 1 and sorted(flat.tolist()) == sorted(tensor.reshape(-1).tolist())


@pytest.mark.numeric
def test_a_view_shares_the_reductions_of_its_source():
    tensor = torch.randn(4, 6, 5)
    batch = SummaryBatch(3, with_stats=True)
    first = batch.summarise("x", tensor)
    second = batch.summarise("x", tensor.permute(2, 0, 1))
    assert second is not first and second.stats is first.stats


def test_the_same_tensor_object_is_summarised_once():
    tensor = torch.randn(4, 4)
    batch = SummaryBatch(3, with_stats=False)
    assert batch.summarise("x", tensor) is batch.summarise("y", tensor)
    tensor.add_(1)  # an in-place change is a new summary
    changed = batch.summarise("x", tensor)
    assert changed.array.tolist() == tensor[:3, :3].tolist()


def test_a_freed_tensor_is_never_mistaken_for_a_new_one():
    """Summaries hold weak references: a reused id() of a dead tensor is not a match."""
    batch = SummaryBatch(3, with_stats=False)
    seen: dict[int, list[float]] = {}
    for value in range(50):
        tensor = torch.full((2, 2), float(value))
        summary = batch.summarise("x", tensor)
        assert summary.array.tolist() == [[float(value)] * 2] * 2
        seen[id(tensor)] = summary.array.tolist()
        del tensor  # freed at once by its reference count (a gc.collect() here took 20 s in the full suite)
    assert len(seen) < 50  # ids were reused, and still every summary was right


def test_masks_are_counted_once_per_forward():
    mask = torch.zeros(4, 9, 9).masked_fill(torch.rand(4, 9, 9) > 0.5, -100.0)
    batch = SummaryBatch(3, with_stats=False)
    first = batch.summarise("attn_mask", mask)
    for _ in range(40):  # other tensors in between do not push the mask out
        batch.summarise("x", torch.randn(3))
    assert batch.summarise("mask", mask) is first
    assert first.masked == int((mask != 0).sum())
    plain = batch.summarise("x", mask)  # the same tensor under another name: no count
    assert plain.masked is None


def test_tensors_that_require_grad_or_lack_a_numpy_dtype_give_their_slice():
    batch = SummaryBatch(3, with_stats=True)
    weight = torch.nn.Parameter(torch.arange(12.0).reshape(3, 4))  # requires grad
    half = (torch.arange(12.0).reshape(3, 4) / 8).bfloat16()  # no numpy dtype
    for tensor, dtype in ((weight, "float32"), (half, "bfloat16")):
        summary = batch.summarise("x", tensor).named("x")
        assert summary.values == tensor.detach().float()[:3, :3].tolist()
        assert (summary.shape, summary.dtype, summary.index) == ([3, 4], dtype, "[:3,:3]")
        assert summary.stats["max"] == float(tensor.detach().max())


_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
           torch.uint8, torch.bool]


@settings(max_examples=120, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=5),
    dtype=st.sampled_from(_DTYPES),
    step=st.integers(1, 2),
    grad=st.booleans(),
    data=st.data(),
)
def test_summaries_of_any_layout_dtype_and_value(shape, dtype, step, grad, data):
    """Any layout, storage offset, dtype, dimension count (0-d, empty) and autograd state: the right slice."""
    base = (torch.randn(shape, generator=torch.Generator().manual_seed(len(shape))) * 50).to(dtype)
    dims = data.draw(st.permutations(list(range(len(shape)))))
    start = data.draw(st.integers(0, 1))  # 1: a view starting inside its storage
    tensor = base.permute(dims)[(slice(start, None, step),)] if shape else base
    if grad and dtype.is_floating_point:
        tensor = torch.nn.Parameter(tensor.clone(), requires_grad=True)
    mask = torch.zeros(2, 3, 3).masked_fill(torch.eye(3, dtype=torch.bool), -100.0)
    values = {
        "x": tensor, "again": tensor, "attn_mask": mask, "count": 3, "scale": 0.5, "name": "W-MSA",
        "flag": True, "sizes": [1, (2, 3)], "size": torch.Size([4, 5]), "dtype": torch.float16,
        "nothing": None, "module": torch.nn.Identity(),
        "expanded": torch.arange(3.0).expand(4, 3),  # a zero stride
    }
    batch = SummaryBatch(3, with_stats=False)
    with torch.set_grad_enabled(grad):
        batch.summarise_values(values)
    assert values["again"] is values["x"]  # the same tensor object: one summary
    named = {key: value.named(key) if isinstance(value, Summary) else value for key, value in values.items()}
    expected = tensor.detach()[(slice(0, 3),) * tensor.dim()]
    assert named["x"].values == (expected.float() if dtype is torch.bfloat16 else expected).tolist()
    assert named["x"].shape == list(tensor.shape)
    assert named["x"].index == ("[" + ",".join([":3"] * tensor.dim()) + "]" if tensor.dim() else "")
    assert named["expanded"].values == [[0.0, 1.0, 2.0]] * 3
    assert named["attn_mask"].masked == 6 and named["sizes"] == [1, [2, 3]] and named["dtype"] == "float16"
    assert named["count"] == 3 and named["nothing"] is None and values["module"] is not None


def test_an_in_place_change_between_steps_gives_a_new_summary():
    """A remembered tensor's version counter is checked."""
    tensor = torch.zeros(4, 4)
    batch = SummaryBatch(3, with_stats=False)
    first = {"x": tensor}
    batch.summarise_values(first)
    tensor.add_(2)
    second = {"x": tensor}
    batch.summarise_values(second)
    assert first["x"].array.tolist() == [[0.0] * 3] * 3
    assert second["x"].array.tolist() == [[2.0] * 3] * 3


@pytest.mark.parametrize("options", [{}, {"keep": ["*"]}, {"stats": True}])
def test_step_records_values_modules_and_the_callers_lines(options):
    """Ids, plain values and the caller's source lines, whichever options record."""
    from swintrace.recording.tracing import Instrumented, step
    from swintrace.source import display_path

    class Stepper(Instrumented):
        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            sizes = [1, 2]
            step("input", x=x, sizes=sizes)
            step("proj", self.proj, name="projected", x=self.proj(x), scale=0.5)
            step("add_mask", note="no_mask", mask=None)
            step("roll", rearranges=x, shifted=x.roll(1, 0), kind="keyword called kind")
            sizes.append(3)
            return x

    x = torch.arange(6.0).reshape(3, 2)
    stepper = Stepper()
    torch.nn.init.ones_(stepper.proj.weight)
    torch.nn.init.zeros_(stepper.proj.bias)
    with swintrace.tracing(**options) as trace:
        stepper(x)
    steps = [event for event in trace.events if event.type == "step"]
    assert [event.id for event in steps] == ["input", "projected", "add_mask", "roll"]
    assert steps[0].scalars["sizes"] == [1, 2] and steps[1].scalars["scale"] == 0.5
    assert steps[3].scalars["kind"] == "keyword called kind"
    assert steps[1].tensor("x").values == [[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]]
    first_line = Stepper.forward.__code__.co_firstlineno
    assert [event.source for event in steps] == [  # where each step's code starts, from its frame
        f"{display_path(__file__)}:{first_line + line}" for line in (1, 3, 4, 5)
    ]
    assert steps[0].code == ["sizes = [1, 2]"]


def test_step_outside_tracing_does_nothing_and_needs_a_kind():
    from swintrace.recording.recorder import step

    assert step("input", x=torch.zeros(1)) is None
    with pytest.raises(TypeError):
        step()


def test_a_scope_that_raises_is_closed():
    """A scope whose forward raises is closed, and the error goes on."""
    from swintrace.recording.tracing import Instrumented, step

    class Failing(Instrumented):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            step("input", x=x)
            raise ValueError("bad input")

    class Outer(Instrumented):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Failing()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for _ in range(2):  # the second call finds the class already described
                try:
                    self.inner(x)
                except ValueError:
                    step("recovered", x=x)
            return x

    with swintrace.tracing() as trace:
        Outer()(torch.zeros(2))
    assert [(event.type, event.id, event.depth) for event in trace.events] == [
        ("enter", "", 0),
        ("enter", "inner", 1), ("step", "inner.input", 2), ("exit", "inner", 1), ("step", "recovered", 1),
        ("enter", "inner@2", 1), ("step", "inner@2.input", 2), ("exit", "inner@2", 1),
        ("step", "recovered@2", 1),
        ("exit", "", 0),
    ]
