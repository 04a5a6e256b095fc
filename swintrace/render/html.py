"""The walkthrough as one self-contained HTML file (no network: styles and script inline).

The page is built from Jinja2 templates (``templates/`` at the top of the
repository, installed as ``swintrace.templates``) with autoescaping on: every
string from a trace — file names, labels, code — is escaped. Only Pygments'
highlighted code is inserted as markup, and Pygments escapes it itself.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from .._version import __version__
from ..config import SwinConfig
from ..course_text import chapters_of_scope
from ..errors import UserError
from ..flops import StageRow, cost_rows, count_text, stage_rows
from ..palette import css_variables
from ..pictures import Picture
from ..pictures.draw import thumbnail_jpeg
from ..trace.events import Event, TensorSummary, Trace
from ..vocabulary import FAMILIES, SCOPE_LEVELS, explanation, family_name_key, step_style
from ..vocabulary import step_title as kind_title
from ..words import entry
from .explorer import explorer_data
from .text import (
    check_language,
    first_nonfinite,
    label,
    nonfinite_text,
    scalar_repr,
    scope_doc,
    scope_heading,
    slice_label,
    stats_text,
    step_note,
    step_title,
    summary_rows,
    tensor_repr,
    top_predictions,
)
from .tree import ScopeNode, build_calls, leads

# Shape comments in our code ("# B*nW, M*M, C") name the dimensions of the assigned tensor.
# The left side of an assignment whose shape comment names dimensions: names, commas, spaces.
_TARGETS = re.compile(r"[\w, ]*")
# Pygments' colors for code: every one of xcode's reaches 4.5:1 on our code background (WCAG AA).
CODE_STYLE = "xcode"
# Outline depth: model, stages, blocks, and the operations inside a block.
_OUTLINE_LEVELS = 4


@dataclass
class _Node:
    """What the template needs of one scope, lead or step."""

    is_scope: bool = False
    is_lead: bool = False
    id: str = ""
    anchor: str = ""
    kind: str = ""
    level: int = 0
    heading: str | None = None
    doc: str | None = None
    chapters: list[dict[str, str]] = field(default_factory=list)  # course chapters that teach a scope: href, text
    title: str = ""
    color: str = ""
    note: str | None = None
    explain: Markup | None = None  # what the step does and why (the catalog's explain section)
    explain_ref: str | None = None  # ... or the id of the <template> holding it
    explain_label: str = ""
    family: str = ""  # the step's family, named (never told by color alone)
    family_key: str = "reshape"  # ... and its key, which the CSS colors (f-attention)
    shape: str = ""  # the first tensor's shape on the step's one-line summary: "1×64×8"
    open: bool = False  # steps start folded to one line; those with pictures start open
    outline: str = ""  # a scope's label in the outline: "Stage 2", "Block 1 · SW-MSA"
    code_ref: str | None = None
    code: Markup | None = None
    source: str | None = None
    search: str = ""
    modules: list[tuple[str, str]] = field(default_factory=list)
    tensors: list[dict[str, Any]] = field(default_factory=list)
    scalars: list[tuple[str, str]] = field(default_factory=list)
    children: list[_Node] = field(default_factory=list)
    pictures: list[dict[str, str]] = field(default_factory=list)
    explore: dict[str, str] | None = None  # a link to the window explorer with this step's block: id, text, title


def render_html(trace: Trace, lang: str = "en", pictures: list[Picture] | None = None,
                course: str | None = None) -> str:
    """The whole walkthrough of ``trace`` as one HTML document, with ``pictures`` inline.

    ``course``: the relative href of a course's folder (``course``), so that each
    scope links to the chapter that teaches it; None: no such links.
    """
    check_language(lang)
    words = entry(lang, "report")
    calls = build_calls(trace)
    prefix = len(calls) > 1
    by_step: dict[str, list[dict[str, str]]] = {}
    for picture in pictures or []:
        by_step.setdefault(picture.step_id, []).append(
            {"title": picture.title, "alt": picture.alt, "data": picture.base64, "name": picture.name})
    nodes: list[_Node] = []
    shared: dict[str, str] = {}
    for number, call in enumerate(calls):
        nodes.extend(_nodes(call, _Context(lang, f"c{number}-" if prefix else "", by_step if number == 0 else {},
                                           course, shared=shared, explorer=bool(pictures) and number == 0,
                                           version=trace.model_version)))
    if trace.backward:  # after the forward: the gradients, in autograd's order (backward_html.py)
        from .backward_html import backward_node

        nodes.append(backward_node(trace, _Context(lang, "", by_step, shared=shared, version=trace.model_version)))
    model = trace.header.get("model", {})
    top = top_predictions(trace, lang)
    explorer = explorer_data(trace, lang, _scope_anchors(trace, "c0-" if prefix else "")) if pictures else None
    return _environment().get_template("report.html.j2").render(
        explorer=explorer,
        lang=lang,
        title=f"{words['title']}: {model.get('variant') or model.get('class', '')}",
        words=words,
        summary=summary_rows(trace, lang),
        thumbnail=thumbnail_jpeg(trace),
        random_weights=trace.header.get("weights", {}).get("kind") == "random",
        nonfinite=_nonfinite(trace, lang, "c0-" if prefix else ""),
        costs=_costs(trace, lang),
        top=top,
        top_title=label(lang, "top", k=len(top)),
        summary_pictures=by_step.get("", []),
        outline=_outline(nodes, 1),
        nodes=nodes,
        shared=[(ref, Markup(markup)) for markup, ref in shared.items()],
        steps=sum(1 for e in trace.events if e.type == "step"),
        footer=f"swintrace {__version__} · {len(trace.events)} events",
    )


def render_fragment(trace: Trace, lang: str = "en") -> str:
    """A trace, subtree or step as an HTML fragment for notebooks: the report's markup,
    styles scoped under ``.swintrace`` so that they never touch the notebook page."""
    check_language(lang)
    nodes: list[_Node] = []
    for call in build_calls(trace):
        nodes.extend(_nodes(call, _Context(lang, version=trace.model_version)))
    if trace.backward:  # the notebook shows the gradients as the report does
        from .backward_html import backward_node

        nodes.append(backward_node(trace, _Context(lang, version=trace.model_version)))
    return _environment().get_template("fragment.html.j2").render(
        nodes=nodes,
        explorer=explorer_data(trace, lang),
        summary=summary_rows(trace, lang) if trace.header.get("model") and len(trace.events) > 50 else [],
    )


def render_explorer(trace: Trace, lang: str = "en") -> str:
    """The window explorer alone, styles included, for a notebook cell (a UserError when the
    trace holds no explorer data: record it with pictures, as ``trace_image`` does)."""
    check_language(lang)
    data = explorer_data(trace, lang)
    if data is None:
        raise UserError.of("no_explorer_data")
    return _environment().get_template("explorer_view.html.j2").render(explorer=data)


def _template_source(name: str) -> str | None:
    """A template's text, read through importlib.resources (works from a zipped install too)."""
    try:
        return resources.files("swintrace.templates").joinpath(name).read_text("utf-8")
    except FileNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # Every page's colors come from the palette; highlighted code's from pygments.
    environment.globals["palette_css"] = Markup(css_variables())
    environment.globals["code_css"] = Markup(code_css())
    environment.globals["family_css"] = Markup("".join(
        f".swintrace .f-{family} {{ --kind-color: {color}; }}\n" for color, family in FAMILIES.items()))
    return environment


@functools.lru_cache(maxsize=1)
def code_css() -> str:
    """Pygments' colors for highlighted code, scoped like walkthrough.css."""
    return HtmlFormatter(style=CODE_STYLE).get_style_defs(".swintrace .code")


@functools.lru_cache(maxsize=1024)
def _highlighted(code: str) -> str:
    """Highlighted HTML of a code block (the same lines run in every block of a stage: done once)."""
    return highlight(code, _LEXER, _FORMATTER)


_LEXER = PythonLexer()
_FORMATTER = HtmlFormatter(nowrap=False)


def _nonfinite(trace: Trace, lang: str, prefix: str) -> dict[str, str] | None:
    """The warning about the first non-finite values, with the anchor of their step."""
    text = nonfinite_text(trace, lang)
    found = first_nonfinite(trace)
    if text is None or found is None:
        return None
    return {"text": text, "anchor": _anchor(f"c{found[0].call}-" if prefix else "", found[0].id)}


def _anchor(prefix: str, event_id: str) -> str:
    return prefix + (event_id or "model")


@dataclass(frozen=True)
class _Context:
    """What every node of one rendering shares."""

    lang: str
    prefix: str = ""  # anchor prefix ("c1-") when a trace holds several forwards
    pictures: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # step id -> pictures after it
    course: str | None = None  # href of the course's folder for this language, or None: no chapter links
    scope_kind: str = ""  # kind of the scope the nodes are in
    linked: set[str] = field(default_factory=set)  # chapters already linked: each once, at its first scope
    # Markup that many steps repeat (code, explanations), kept once: markup -> id of its <template>;
    # None: inline in every step (the notebook view, where scripts may not run).
    shared: dict[str, str] | None = None
    explorer: bool = False  # the page has the window explorer: explored blocks' softmax steps link to it
    version: int = 1  # the Swin generation of the trace (its explanations)

    def share(self, markup: Markup | None) -> tuple[Markup | None, str | None]:
        """(inline markup, None), or (None, template id) when repeated markup is kept once."""
        if markup is None or self.shared is None:
            return markup, None
        return None, self.shared.setdefault(str(markup), f"t{len(self.shared)}")


def _nodes(children: list[ScopeNode | Event], context: _Context) -> list[_Node]:
    lang = context.lang
    announced = leads(children)
    result: list[_Node] = []
    for index, child in enumerate(children):
        for step in announced.get(index, []):
            style = step_style(step.kind)
            result.append(_Node(
                is_lead=True, title=step_title(step, lang, lead=True), color=style.color,
                family_key=FAMILIES.get(style.color, "reshape"),
                heading=kind_title(step.kind, lang) if style.lead_level else None,
            ))
        if isinstance(child, ScopeNode):
            result.append(_scope_node(child, context))
        else:
            result.append(_step_node(child, context))
    return result


def _scope_node(scope: ScopeNode, context: _Context) -> _Node:
    lang = context.lang
    links = []
    for number, found in chapters_of_scope(scope.kind, scope.id) if context.course is not None else ():
        if found.slug not in context.linked:
            context.linked.add(found.slug)
            links.append({"href": f"{context.course}/{number:02d}-{found.slug}.html",
                          "text": entry(lang, "report.chapter").format(title=found.title(lang))})
    return _Node(
        is_scope=True, id=scope.id, anchor=_anchor(context.prefix, scope.id), kind=scope.kind,
        level=SCOPE_LEVELS.get(scope.kind, 3), heading=scope_heading(scope.enter, lang, begin=True),
        doc=scope_doc(scope.enter, lang), chapters=links, outline=_outline_label(scope, lang),
        children=_nodes(scope.children, replace(context, scope_kind=scope.kind)),
    )


def _step_node(event: Event, context: _Context) -> _Node:
    lang, prefix = context.lang, context.prefix
    pictures = context.pictures.get(event.id, [])
    style = step_style(event.kind)
    title = step_title(event, lang)
    explained = _with_code(explanation(event.kind, context.scope_kind, lang, context.version))
    explain, explain_ref = context.share(_explain_box(explained, entry(lang, "report.explain")) if explained else None)
    if explain is not None:  # inline: the template draws the box
        explain = explained
    code, code_ref = context.share(Markup(_highlighted("\n".join(event.code))) if event.code else None)
    tensors = [_tensor(event, summary, lang) for summary in event.tensors]
    shapes = " ".join("x".join(map(str, t.shape)) for t in event.tensors[1:])  # the first is on the summary
    return _Node(
        id=event.id, anchor=_anchor(prefix, event.id), kind=event.kind, title=title, color=style.color,
        note=step_note(event, lang),
        explain=explain, explain_ref=explain_ref, explain_label=entry(lang, "report.explain"),
        family=entry(lang, f"report.families.{family_name_key(event.kind)}"),
        family_key=FAMILIES.get(style.color, "reshape"),
        shape="×".join(map(str, event.tensors[0].shape)) if event.tensors else "",
        open=bool(pictures),
        code=code, code_ref=code_ref,
        source=event.source,
        # the page searches each step's one-line summary and kind; other words it should find go here
        search=" ".join(part for part in (kind_title(event.kind, "en") if lang != "en" else "", shapes) if part).lower(),
        modules=list(event.modules.items()),
        tensors=tensors,
        scalars=[(name, scalar_repr(value)) for name, value in event.scalars.items()],
        pictures=pictures,
        explore=_explore_link(event, lang) if context.explorer else None,
    )


def _explore_link(event: Event, lang: str) -> dict[str, str] | None:
    """The link back to the explorer on the softmax step of a block whose attention it holds."""
    if event.kind != "softmax" or event.array("explore_codes") is None or not event.id.endswith(".attn.softmax"):
        return None
    words = entry(lang, "explorer")
    return {"block": event.id[: -len(".attn.softmax")], "text": words["explore_link"], "title": words["explore_link_title"]}


def _scope_anchors(trace: Trace, prefix: str) -> dict[str, str]:
    """The element id of every scope of the first forward (the explorer links to its blocks)."""
    return {event.id: _anchor(prefix, event.id) for event in trace.events if event.type == "enter"}


def _explain_box(text: Markup, label_text: str) -> Markup:
    """The folding box of an explanation, as kept once in a <template>."""
    return Markup('<details class="explain" open><summary>{}</summary><p>{}</p></details>').format(label_text, text)


def _with_code(text: str | None) -> Markup | None:
    """Catalog text with its `code` spans as <code> (escaped first: markup only from us)."""
    if text is None:
        return None
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", str(escape(text))))


_CODE_SPAN = re.compile(r"`([^`]+)`")


# Tensors of at most this many numbers show their slice in print (every tensor of swin_teach).
PRINTED_WHOLE = 4096


def _tensor(event: Event, summary: TensorSummary, lang: str) -> dict[str, Any]:
    names = dim_names(event, summary)
    stats = stats_text(summary, lang)
    return {
        "name": summary.name,
        "dims": [{"size": size, "name": name} for size, name in zip(summary.shape, names)],
        "dtype": summary.dtype,
        "device": summary.device,
        "stats": stats,
        "slice_label": slice_label(summary),
        "repr": tensor_repr(summary),
        "small": math.prod(summary.shape) <= PRINTED_WHOLE,  # its slice opens in print
    }


def dim_names(event: Event, summary: TensorSummary) -> list[str | None]:
    """Names of the tensor's dimensions, from the shape comment where the code assigns it.

    ``x = self.norm(x)  # B, L, C`` names the dimensions of ``x`` B, L and C. The
    line is split by hand (linear in its length, whatever a trace holds).
    """
    for line in reversed(event.code):
        code, hash_sign, comment = line.rpartition("#")
        targets, equals, _ = code.partition("=")
        if not hash_sign or not equals or not _TARGETS.fullmatch(targets):
            continue
        if summary.name not in (word for part in targets.split(",") for word in part.split()):
            continue
        names = [_dim_name(part) for part in comment.split(":", 1)[0].split(",")]
        if len(names) == len(summary.shape) and all(names):
            return [None if name.isdigit() else name for name in names]  # "1" names nothing a size does not say
    return [None] * len(summary.shape)


def _dim_name(part: str) -> str:
    """A dimension's name in a shape comment, without the prose around it:
    "each B*nW" -> "B*nW", "M*M or None" -> "M*M"."""
    return part.strip().removeprefix("each ").split(" or ")[0].strip()


def _stages(trace: Trace) -> list[StageRow]:
    """The geometry of each stage as traced (empty when the trace lacks it)."""
    found = traced_stage_sizes(trace)
    return stage_rows(*found) if found else []


def _costs(trace: Trace, lang: str) -> dict[str, Any] | None:
    """The cost table: one row per part of the network (labels in ``lang``), and the totals."""
    found = traced_stage_sizes(trace)
    if not found:
        return None
    rows = []
    for row in cost_rows(*found):
        part = entry(lang, f"report.parts.{row.part}").format(stage=(row.stage or 0) + 1)
        pixels = row.part == "embedding"  # its input is the (padded) image
        rows.append({"part": part, "row": row, "blocks": row.blocks, "parameters": f"{row.parameters:,}",
                     "flops": count_text(row.flops), "resolution": f"{row.H}×{row.W}" + (" px" if pixels else ""),
                     "tokens": "" if pixels else row.H * row.W})
    parameters = sum(r["row"].parameters for r in rows)
    flops = sum(r["row"].flops for r in rows)
    return {"rows": rows, "total": entry(lang, "report.parts.total"), "parameters": f"{parameters:,}",
            "parameter_units": count_text(parameters), "flops": count_text(flops)}


def traced_stage_sizes(trace: Trace) -> tuple[SwinConfig, list[tuple[int, int]]] | None:
    """(config, each stage's input (H, W) in tokens) from a trace, or None."""
    config_data = trace.header.get("model", {}).get("config")
    if not config_data:
        return None
    config = SwinConfig.from_dict(config_data)
    sizes = []
    for stage in range(config.num_stages):
        event = trace.shown().get(f"layers.{stage}.input")
        if event is None or not isinstance(event.scalars.get("H"), int) or not isinstance(event.scalars.get("W"), int):
            return None
        sizes.append((event.scalars["H"], event.scalars["W"]))
    return config, sizes


def _outline_label(scope: ScopeNode, lang: str) -> str:
    """What the outline calls a scope: stages, blocks with their attention, named parts."""
    parts = scope.id.split(".")
    if scope.kind == "BasicLayer" and len(parts) == 2:
        return entry(lang, "report.outline_stage").format(n=int(parts[1]) + 1)
    if scope.kind == "SwinTransformerBlock":
        attention = next((c.kind for c in scope.children if isinstance(c, Event) and c.kind in ("w_msa", "sw_msa")),
                         "w_msa")
        return entry(lang, "report.outline_block").format(m=parts[-1], attention=attention.upper().replace("_", "-"))
    named = {"PatchMerging": "outline_merging", "PatchEmbed": "outline_embedding", "forward_head": "outline_head",
             "create_mask": "outline_mask"}
    return entry(lang, f"report.{named[scope.kind]}") if scope.kind in named else scope.kind


def _outline(nodes: list[_Node], level: int) -> list[dict[str, Any]]:
    items = []
    for node in nodes:
        if not node.is_scope:
            continue
        children = _outline(node.children, level + 1) if level < _OUTLINE_LEVELS else []
        items.append({"anchor": node.anchor, "label": node.outline, "level": level, "children": children})
    return items
