"""notebooks/explore.ipynb runs top to bottom, and is stored without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "explore.ipynb"


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 8
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_notebook_uses_only_public_names():
    import re

    import swintrace

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert not re.search(r"(from|import) swintrace\.", code)
    used = set(re.findall(r"\bswintrace\.(\w+)", code))
    assert used and used <= set(swintrace.__all__), used - set(swintrace.__all__)


def test_notebook_executes():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "layers.0.blocks.1.cyclic_shift" in text and "masked entries: 18240" in text
    assert "window 4: bias table [49, 2]" in text and "cat.safetensors" in text
    html = [o for o in outputs if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert len([o for o in html if 'class="swintrace"' in o["data"]["text/html"]]) >= 2  # traces and steps
    assert any("dataframe" in o["data"]["text/html"] for o in html)  # trace.to_pandas()
    assert "cat.html" in text
    assert any(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in outputs)
