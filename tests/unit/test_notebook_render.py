"""Notebooks render read-only: escaped text, highlighted code, outputs as text or inline images; never run."""

from __future__ import annotations

import json

import pytest

from lti_app.debug.notebook import NotebookError, render_notebook


def _nb(cells: list[dict], minor: int = 4) -> bytes:  # type: ignore[type-arg]
    return json.dumps({"nbformat": 4, "nbformat_minor": minor, "metadata": {}, "cells": cells}).encode()


def test_cells_outputs_and_old_notebooks_without_ids():
    cells = render_notebook(_nb([
        {"cell_type": "markdown", "metadata": {}, "source": "<img src=x onerror=alert(1)>"},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "x = 1",
         "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo=",
                                                                            "text/html": "<script>x</script>"}},
                     {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["\x1b[31mBoom\x1b[0m"]},
                     {"output_type": "execute_result", "metadata": {}, "execution_count": 1,
                      "data": {"text/html": "<script>x</script>"}}]},
    ]))  # fmt: skip
    assert "<img src=x" not in cells[0].source and "&lt;img" in cells[0].source
    assert cells[1].count == 1 and "data:image/png;base64,iVBORw0KGgo=" in cells[1].outputs[0]
    assert "Boom" in cells[1].outputs[1] and "\x1b" not in cells[1].outputs[1]
    assert "<script>" not in cells[1].outputs[2] and "&lt;script&gt;" in cells[1].outputs[2]


@pytest.mark.parametrize("raw", [b"not json", b"{}", b'{"nbformat": 4}', b"\xff\xfe"])
def test_what_is_not_a_notebook_is_refused(raw):  # type: ignore[no-untyped-def]
    with pytest.raises(NotebookError):
        render_notebook(raw)
