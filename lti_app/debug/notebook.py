"""Render a Jupyter notebook read-only: nbformat reads and checks it, cells become escaped HTML (code highlighted
by Pygments, outputs as text, PNG/JPEG images inline as data: URIs); nothing in the notebook is executed, and
its HTML and JavaScript outputs are shown as source, never run."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
IMAGES = ("image/png", "image/jpeg")


@dataclass
class Cell:
    """One cell ready for the template."""

    kind: str  # code | markdown | raw
    source: Markup
    count: int | None = None
    outputs: list[Markup] = field(default_factory=list)


class NotebookError(ValueError):
    """Not a notebook nbformat can read."""


def _output(out: dict) -> Markup:  # type: ignore[type-arg]
    kind = out.get("output_type")
    if kind == "stream":
        return Markup("<pre tabindex='0' class='nb-stream'>{}</pre>").format(ANSI.sub("", str(out.get("text", ""))))
    if kind == "error":
        trace = ANSI.sub("", "\n".join(out.get("traceback", [])))
        return Markup("<pre tabindex='0' class='nb-error'>{}</pre>").format(
            trace or f"{out.get('ename')}: {out.get('evalue')}"
        )
    data = out.get("data", {})
    for mime in IMAGES:
        if mime in data:
            b64 = "".join(str(data[mime]).split())
            if re.fullmatch(r"[A-Za-z0-9+/=]+", b64):
                return Markup("<img alt='cell output image' src='data:{};base64,{}'>").format(mime, b64)
    text = data.get("text/plain") or data.get("text/html") or data.get("text/markdown") or ""
    return Markup("<pre tabindex='0' class='nb-result'>{}</pre>").format(
        "".join(text) if isinstance(text, list) else str(text)
    )


def render_notebook(raw: bytes) -> list[Cell]:
    """The notebook's cells (NotebookError when it is not a notebook)."""
    import nbformat  # with jsonschema: loaded by the first notebook shown, not with the app (0.1 s of CPU)

    try:
        with warnings.catch_warnings():  # an older notebook (no cell ids, v3) is read as it is, without noise
            warnings.simplefilter("ignore")
            nb = nbformat.reads(raw.decode("utf-8", errors="replace"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - nbformat raises many kinds (JSON, schema, version)
        raise NotebookError(f"This file is not a notebook Jupyter can read: {type(exc).__name__}") from None
    formatter = HtmlFormatter(noclasses=True, nowrap=False)
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            code = Markup(highlight(cell.source, PythonLexer(), formatter))  # noqa: S704 - Pygments escapes
            outs = [_output(o) for o in cell.get("outputs", [])]
            cells.append(Cell("code", code, cell.get("execution_count"), outs))
        else:
            cells.append(
                Cell(cell.cell_type, Markup("<pre tabindex='0' class='nb-text'>{}</pre>").format(escape(cell.source)))
            )
    return cells
