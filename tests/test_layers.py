"""The package's imports run one way, down a declared order of layers (DESIGN: one-way data flow)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import swintrace
from swintrace.trace.validate import MODULE_PATTERNS

PACKAGE = Path(swintrace.__file__).resolve().parent

# Lowest first. A module may import modules of its own layer or of a lower one, never a higher
# one (lazy imports inside functions included). docs/architecture.md shows the same order.
LAYERS = [
    # torch-free foundations: words, numbers, files
    {"_version", "errors", "config", "palette", "words", "vocabulary", "geometry", "flops", "course_text", "files", "source",
     "templates"},  # templates/ is installed as swintrace.templates (a package of data files)
    # the trace as data: events, their file format and its validation (torch-free)
    {"trace", "trace.events", "trace.validate", "trace.tracefile", "trace.table"},
    # recording a forward: tracing() and what runs while the model runs
    {"recording", "recording.summary", "recording.records", "recording.capture", "recording.recorder", "recording.tracing"},
    # the instrumented model
    {"models", "models.windows", "models.layers", "models.picture_steps", "models.swin"},
    # building a model: weights, images, named downloads
    {"checkpoints", "checkpoints.layouts", "checkpoints.weights", "checkpoints.pretrained", "images", "images.prepare", "images.shapes", "checkpoints.loading", "checkpoints.adopt"},
    # what users see: pictures, renderers, output files, notebook display
    {"pictures", "pictures.draw", "pictures.grids", "pictures.attention", "pictures.story",
     "render", "render.tensor_text", "render.text", "render.tree", "render.markdown", "render.html", "render.terminal",
     "render.lessons", "render.course", "render.explorer", "api", "api.output", "api.display", "api.trace_image", "api.inputs"},
    # entry points
    {"cli", "__main__", "train_teach", ""},
]
LAYER_OF = {module: index for index, layer in enumerate(LAYERS) for module in layer}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """The swintrace modules ``path`` imports, anywhere in the file."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = ".".join([*base, node.module] if node.module else base)
            submodules = {f"{target}.{alias.name}".lstrip(".") for alias in node.names} & set(LAYER_OF)
            found |= submodules or {target}  # `from . import files` names a module; else the target
        elif isinstance(node, ast.Import):
            found.update(alias.name.removeprefix("swintrace").lstrip(".") for alias in node.names
                         if alias.name.startswith("swintrace"))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(str(node.args[0].value).lstrip("."))  # importlib.import_module(".loading", ...)
    return {name for name in found if name != module}


def test_every_module_has_a_layer():
    modules = {_module_name(path) for path in PACKAGE.rglob("*.py")}
    # templates/ is swintrace.templates once installed (an editable install has no such folder)
    assert modules - {"templates"} == set(LAYER_OF) - {"templates"}


def test_imports_never_go_up():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        for target in _imports(path):
            if LAYER_OF.get(target, -1) > LAYER_OF[module]:
                upward.append(f"{module} (layer {LAYER_OF[module]}) imports {target} (layer {LAYER_OF[target]})")
    assert upward == []


def test_the_data_layer_and_the_renderers_load_no_model_code():
    script = (
        "import sys, swintrace.trace.events, swintrace.trace.validate, swintrace.api.output, swintrace.render.course\n"
        "loaded = [m for m in ('swintrace.models.swin', 'swintrace.checkpoints.loading', 'swintrace.checkpoints.weights', 'swintrace.models.windows')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "import swintrace.geometry, swintrace.flops\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_two_lowest_layers_import_no_torch():
    """Words, numbers, files and the trace data are plain Python (the package's __init__ loads tracing)."""
    for path in PACKAGE.glob("*.py"):
        if LAYER_OF[_module_name(path)] <= 1:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
            imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
            assert not {name for name in imported if name.split(".")[0] == "torch"}, path.name


def test_no_source_file_is_over_500_lines():
    long_files = {path.name: n for path in PACKAGE.rglob("*.py")
                  if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500}
    assert long_files == {}


@pytest.mark.parametrize("variant", sorted(swintrace.VARIANTS))
def test_the_module_patterns_of_validation_are_the_models(variant):
    with torch.device("meta"):
        model = swintrace.SwinTransformer(swintrace.VARIANTS[variant])
    normalised = {".".join("N" if part.isdigit() else part for part in name.split(".")) for name, _ in model.named_modules()}
    assert normalised == MODULE_PATTERNS
