"""Slices print exactly as torch prints them, without building a tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from swintrace.render.tensor_text import tensor_text

_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": np.float32,
           "int64": np.int64, "int32": np.int32, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_}


def _torch_repr(values: np.ndarray, dtype: str) -> str:
    return repr(torch.tensor(values.tolist(), dtype=getattr(torch, dtype)))


_ELEMENTS = st.one_of(
    st.floats(-3, 3), st.floats(-1e9, 1e9), st.floats(-1e-6, 1e-6),
    st.sampled_from([0.0, -0.0, 1.0, -2.0, 100.0, float("nan"), float("inf"), float("-inf"), 1e-5, 12345.0]),
)


@settings(max_examples=400, deadline=None)
@given(
    dtype=st.sampled_from(sorted(_DTYPES)),
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=4) | st.lists(st.integers(1, 16), min_size=1, max_size=2),
    data=st.data(),
)
def test_the_text_is_torchs_repr(dtype, shape, data):
    numpy_dtype = _DTYPES[dtype]
    if np.issubdtype(numpy_dtype, np.floating):
        values = data.draw(arrays(np.float64, shape, elements=_ELEMENTS))
        with np.errstate(over="ignore"):  # float16 overflows to inf: a value torch prints too
            values = torch.tensor(values.tolist(), dtype=getattr(torch, dtype)).float().numpy() \
                if dtype == "bfloat16" else values.astype(numpy_dtype)
    elif numpy_dtype is np.bool_:
        values = data.draw(arrays(np.bool_, shape))
    else:
        info = np.iinfo(numpy_dtype)
        values = data.draw(arrays(numpy_dtype, shape, elements=st.integers(int(info.min), int(info.max))))
    assert tensor_text(values, dtype) == _torch_repr(values, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float16", "int32"])
def test_long_rows_wrap_as_torch_wraps_them(dtype):
    with np.errstate(over="ignore"):
        values = (np.arange(16 * 16).reshape(16, 16) * 1234.5678).astype(_DTYPES[dtype])
    assert tensor_text(values, dtype) == _torch_repr(values, dtype)


def test_what_it_leaves_to_torch():
    assert tensor_text(np.zeros((0, 3), np.float32), "float32") is None  # empty: torch adds size=
    assert tensor_text(np.zeros(2000, np.float32), "float32") is None  # torch summarises with ...
