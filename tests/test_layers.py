"""The package's imports run one way, down a declared order of layers (DESIGN: one-way data flow)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import swintrace
from swintrace.trace.modules import module_patterns

PACKAGE = Path(swintrace.__file__).resolve().parent

# Lowest first. A module's layer is its folder: the modules at the top of the package are the
# foundations, except the entry points named below. A module may import modules of its own layer
# or of a lower one, never a higher one (lazy imports inside functions included).
# docs/architecture.md shows the same order.
LAYERS = [
    "",             # torch-free foundations at the top: words, numbers, files (templates/ ships as swintrace.templates)
    "trace",        # the trace as data: events, their file format and its validation (torch-free)
    "recording",    # recording a forward: tracing() and what runs while the model runs
    "models",       # the instrumented model
    "images",       # images in: photos prepared for a model, the teaching shapes
    "checkpoints",  # building a model: weights, layouts, named downloads, adoption
    "pictures render api labs",  # what users see: pictures, renderers, output files, notebook display, trace_image, labs
    "entry points",  # the commands and the package itself
]
ENTRY_POINTS = {"cli", "__main__", "train_teach", ""}
# The top of the package stays few and small: a new module finds its folder instead.
FOUNDATIONS = {"_version", "errors", "config", "palette", "words", "vocabulary", "geometry", "flops", "course_text",
               "files", "source"}
FOLDER_LAYER = {folder: index for index, names in enumerate(LAYERS) for folder in names.split(" ") if names != "entry points"}


def layer_of(module: str) -> int:
    """The layer of a dotted module name relative to the package ('' is the package itself)."""
    if module in ENTRY_POINTS:
        return len(LAYERS) - 1
    folder = module.split(".")[0] if "." in module or module in FOLDER_LAYER else ""
    return FOLDER_LAYER[folder]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path) for path in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    """The swintrace modules ``path`` imports, anywhere in the file."""
    module = _module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
            target = ".".join([*base, node.module] if node.module else base)
            submodules = {f"{target}.{alias.name}".lstrip(".") for alias in node.names} & MODULES
            found |= submodules or {target}  # `from . import files` names a module; else the target
        elif isinstance(node, ast.Import):
            found.update(alias.name.removeprefix("swintrace").lstrip(".") for alias in node.names
                         if alias.name.startswith("swintrace"))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            found.add(str(node.args[0].value).lstrip("."))  # importlib.import_module(".loading", ...)
    return {name for name in found if name != module}


def test_every_module_has_a_layer():
    folders = {module.split(".")[0] for module in MODULES if "." in module}
    assert folders <= set(FOLDER_LAYER), folders - set(FOLDER_LAYER)
    # templates/ is swintrace.templates once installed (an editable install has no such folder)
    top = {module for module in MODULES if "." not in module and module not in set(FOLDER_LAYER) - {""}} - {"templates"}
    assert top == FOUNDATIONS | ENTRY_POINTS


def test_imports_never_go_up():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        for target in _imports(path):
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})")
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
    for path in PACKAGE.rglob("*.py"):
        if layer_of(_module_name(path)) <= 1:
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
        model = swintrace.build_model(swintrace.VARIANTS[variant])
    normalised = {".".join("N" if part.isdigit() else part for part in name.split(".")) for name, _ in model.named_modules()}
    assert normalised == module_patterns(swintrace.VARIANTS[variant])


def test_the_public_names_are_the_ones_we_promise():
    """Moving modules between folders never changes what ``import swintrace`` offers."""
    public = ["Event", "SwinConfig", "SwinTransformer", "SwinTransformerV2", "TensorSummary", "Trace", "UserError",
              "VARIANTS", "__version__", "build_model", "check", "diff", "from_model", "load_model", "load_trace",
              "make_pictures", "shape_image", "trace_image", "tracing", "train_step", "transform_for"]
    assert sorted(swintrace.__all__) == sorted(public)
    assert dir(swintrace) == sorted(public)
    for name in public:
        assert getattr(swintrace, name) is not None, name
    assert callable(swintrace.tracing) and callable(swintrace.trace_image)
    commands = subprocess.run([sys.executable, "-m", "swintrace", "--help"], capture_output=True, text=True)
    assert commands.returncode == 0 and all(word in commands.stdout for word in ("run", "render", "show", "course"))
    training = subprocess.run([sys.executable, "-m", "swintrace.train_teach", "--help"], capture_output=True, text=True)
    assert training.returncode == 0 and "--epochs" in training.stdout
