"""A diff of two traces as one offline HTML page, a notebook fragment or Markdown.

Every string from either trace (file names, ids, descriptions, labels) is
escaped for where it goes: the HTML templates autoescape, Markdown goes
through ``markdown._inline`` and its table cells escape ``|`` too.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .._version import __version__
from ..pictures.draw import Picture
from ..trace.diff import Difference, Pair, TraceDiff
from ..trace.events import TensorSummary, Trace
from ..vocabulary import step_title
from ..words import entry, say
from .html import _environment
from .markdown import _inline
from .text import check_language, summary_rows, tensor_repr, top_predictions

# Rows of the pairs' table at most (a Swin-L trace has about 1,500 steps); the rest are counted.
MAX_ROWS = 3000
# Unpaired steps named at most per side.
MAX_UNPAIRED = 200


def diff_view(result: TraceDiff, lang: str) -> dict[str, Any]:
    """Everything a diff page says, as plain strings (escaped later, by the template or for Markdown)."""
    check_language(lang)
    words = entry(lang, "diff")
    name_a, name_b = result.names
    first = result.first_parting
    rows = [_pair_row(pair, lang) for pair in result.pairs[:MAX_ROWS]]
    return {
        "lang": lang,
        "words": words,
        "title": say(lang, "diff.title", a=name_a, b=name_b),
        "names": (name_a, name_b),
        "facts": _facts(result.a, result.b, lang),
        "pairing": say(lang, "diff.pairing_id" if result.by_id else "diff.pairing_order", pairs=len(result.pairs)),
        "tolerance": (say(lang, "diff.tolerance_dtype", rtol=f"{result.rtol:.3g}", atol=f"{result.atol:.3g}",
                          dtype=result.tolerance_from) if result.tolerance_from
                      else say(lang, "diff.tolerance_given", rtol=f"{result.rtol:.3g}", atol=f"{result.atol:.3g}")),
        "verdict": _verdict(result, lang),
        "parted": first is not None,
        "worst": _worst(first, lang) if first is not None else None,
        "rows": rows,
        "more_rows": say(lang, "diff.more", count=len(result.pairs) - MAX_ROWS) if len(result.pairs) > MAX_ROWS else "",
        "only": [(say(lang, "diff.only", name=name, count=len(events)),
                  [event.id or "(root)" for event in events[:MAX_UNPAIRED]],
                  say(lang, "diff.more", count=len(events) - MAX_UNPAIRED) if len(events) > MAX_UNPAIRED else "")
                 for name, events in ((name_a, result.only_a), (name_b, result.only_b)) if events],
        "all_paired": say(lang, "diff.all_paired") if not (result.only_a or result.only_b) else "",
        "footer": f"swintrace {__version__} · swintrace diff",
    }


def render_diff_html(result: TraceDiff, lang: str = "en", picture: Picture | None = None) -> str:
    """The whole diff as one self-contained HTML document (no script, no network)."""
    view = diff_view(result, lang)
    return _environment().get_template("diff.html.j2").render(**view, picture=_figure(picture), page=True)


def render_diff_fragment(result: TraceDiff, lang: str = "en") -> str:
    """The diff as an HTML fragment for a notebook cell, its styles scoped under ``.swintrace``."""
    from ..pictures.difference import difference_picture

    view = diff_view(result, lang)
    return _environment().get_template("diff.html.j2").render(
        **view, picture=_figure(difference_picture(result, lang)), page=False)


def render_diff_markdown(result: TraceDiff, lang: str = "en", image: tuple[str, str] | None = None) -> str:
    """The diff as Markdown; ``image``: (alt text, relative path) of its picture."""
    view = diff_view(result, lang)
    words = view["words"]
    out = [f"# {_inline(view['title'])}\n\n"]
    out.append(_table([words["fact"], view["names"][0], view["names"][1]], view["facts"]))
    out.append(f"{_inline(view['pairing'])} {_inline(view['tolerance'])}\n\n**{_inline(view['verdict'])}**\n\n")
    worst = view["worst"]
    if worst:
        out.append(_table([worst["where"], view["names"][0], view["names"][1]], [("", worst["a"], worst["b"])]))
        for name, text in zip(view["names"], (worst["slice_a"], worst["slice_b"])):
            if text:
                fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
                out.append(f"{_inline(name)}:\n\n{fence}\n{text}\n{fence}\n\n")
    if image:
        alt, path = image
        out.append(f"![{_inline(alt)}]({path})\n\n")
    out.append(f"## {_inline(words['pairs'])}\n\n")
    out.append(_table(words["columns"], [(row["id"], row["title"], row["verdict"], row["shapes"], row["absolute"],
                                          row["relative"], row["compared"]) for row in view["rows"]]))
    if view["more_rows"]:
        out.append(_inline(view["more_rows"]) + "\n\n")
    out.append(f"## {_inline(words['unpaired'])}\n\n")
    for heading, ids, more in view["only"]:
        out.append(f"**{_inline(heading)}**: " + ", ".join(_inline(step_id) for step_id in ids))
        out.append((" " + _inline(more) if more else "") + "\n\n")
    if view["all_paired"]:
        out.append(_inline(view["all_paired"]) + "\n\n")
    return "".join(out).rstrip("\n") + "\n"


def _figure(picture: Picture | None) -> dict[str, str] | None:
    return None if picture is None else {"data": picture.base64, "alt": picture.alt, "title": picture.title}


def _table(header: list[str], rows: list[tuple[str, ...]]) -> str:
    cells = [[_cell(value) for value in header], *[[_cell(value) for value in row] for row in rows]]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    lines.insert(1, "|" + "---|" * len(header))
    return "\n".join(lines) + "\n\n"


def _cell(value: str) -> str:
    return _inline(str(value)).replace("|", "\\|")


def _facts(a: Trace, b: Trace, lang: str) -> list[tuple[str, str, str]]:
    """(label, A's text, B's text): model, weights, input, dtype, device, mode, versions, top-1."""
    rows_a, rows_b = summary_rows(a, lang)[:3], summary_rows(b, lang)[:3]
    facts = [(label_a, text_a, text_b) for (label_a, text_a), (_, text_b) in zip(rows_a, rows_b)]
    words = entry(lang, "diff")
    for key, read in (("dtype", lambda t: t.header.get("input", {}).get("dtype", "?")),
                      ("device", lambda t: t.header.get("input", {}).get("device", "?")),
                      ("mode", lambda t: words["training"] if (t.header.get("model") or {}).get("training")
                       else words["eval"]),
                      ("versions", _versions),
                      ("top1", lambda t: _top1(t, lang))):
        facts.append((words[key], str(read(a)), str(read(b))))
    return facts


def _versions(trace: Trace) -> str:
    versions = trace.header.get("versions") or {}
    return ", ".join(f"{name} {versions[name]}" for name in ("swintrace", "torch") if name in versions)


def _top1(trace: Trace, lang: str) -> str:
    top = top_predictions(trace, lang)
    if not top:
        return "–"
    best = top[0]
    probability = best.get("probability")
    return f"{best.get('label')} ({probability:.4f})" if isinstance(probability, float) else str(best.get("label"))


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) else "?"


def _verdict(result: TraceDiff, lang: str) -> str:
    name_a, name_b = result.names
    first = result.first_parting
    if first is not None:
        worst = first.worst
        values = {"a": name_a, "b": name_b, "id": first.a.id or "(root)", "title": step_title(first.a.kind, lang),
                  "name": worst.name if worst else ""}
        if worst is not None and worst.shape_a is not None and worst.shape_b is not None and not worst.shapes_equal:
            return say(lang, "diff.first_shape", **values, shape_a=str(worst.shape_a), shape_b=str(worst.shape_b))
        if worst is not None and (worst.shape_a is None or worst.shape_b is None):
            return say(lang, "diff.first_missing", **values)
        return say(lang, "diff.first", **values, absolute=_number(first.absolute), relative=_number(first.relative))
    largest = result.largest
    if largest is None:
        return say(lang, "diff.identical", a=name_a, b=name_b)
    return say(lang, "diff.within", a=name_a, b=name_b, relative=_number(largest.relative), id=largest.a.id)


def _where(difference: Difference, lang: str) -> str:
    part, index = difference.where or ("slice", ())
    if part == "stats":
        return say(lang, "diff.where_stats", stat=index, name=difference.name)
    position = "[" + ", ".join(str(i) for i in index) + "]" if isinstance(index, tuple) and index else ""
    return say(lang, f"diff.where_{part}", name=difference.name, index=position)


def _worst(pair: Pair, lang: str) -> dict[str, str] | None:
    """The number of the first parting pair that differs most, in both traces, and both slices of its tensor."""
    worst = pair.worst
    if worst is None:
        return None
    slices = (_slice_text(pair.a.tensors, worst.name), _slice_text(pair.b.tensors, worst.name))
    if worst.values is None:
        shapes = (str(worst.shape_a) if worst.shape_a is not None else "–",
                  str(worst.shape_b) if worst.shape_b is not None else "–")
        return {"where": say(lang, "diff.shape_of", name=worst.name), "a": shapes[0], "b": shapes[1],
                "slice_a": slices[0], "slice_b": slices[1]}
    return {"where": _where(worst, lang), "a": _exact(worst.values[0]), "b": _exact(worst.values[1]),
            "slice_a": slices[0], "slice_b": slices[1]}


def _exact(value: float) -> str:
    """A number with every digit that tells two float32 values apart."""
    return repr(value) if math.isfinite(value) and value == int(value) else f"{value:.9g}"


def _slice_text(tensors: list[TensorSummary], name: str) -> str:
    summary = next((t for t in tensors if t.name == name), None)
    return "" if summary is None or summary.array is None else f"{summary.name}{summary.index} =\n{tensor_repr(summary)}"


def _pair_row(pair: Pair, lang: str) -> dict[str, Any]:
    words = entry(lang, "diff")
    shapes = "; ".join(
        f"{value.name} {value.shape_a}" if value.shapes_equal else
        f"{value.name} {value.shape_a if value.shape_a is not None else '–'} ≠ {value.shape_b if value.shape_b is not None else '–'}"
        for value in pair.values if value.shape_a is not None or value.shape_b is not None)
    compared = sorted({part for value in pair.values for part in value.parts})
    same_id = pair.a.id == pair.b.id
    return {
        "id": (pair.a.id or "(root)") if same_id else f"{pair.a.id} ↔ {pair.b.id}",
        "anchor": pair.a.id,
        "title": step_title(pair.a.kind, lang),
        "parted": pair.parted,
        "verdict": words["parts"] if pair.parted else (words["equal"] if pair.relative == 0 else words["close"]),
        "shapes": shapes,
        "absolute": _number(pair.absolute) if pair.values else "",
        "relative": _number(pair.relative) if pair.values else "",
        "compared": ", ".join(words["parts_compared"][part] for part in compared),
    }

