"""HTML views of output tokens: coloured by copy vs generate, and step-aligned comparisons.

All user text goes through ``html.escape``. Each output token is a ``<span data-step=…>`` so the app
can turn a click on it into "pin this step".
"""
from __future__ import annotations

import difflib
import html
import re
from typing import Optional, Sequence

import numpy as np

from gen_models.text import tokenize
from gen_models.trace import GenerationTrace, Step

from .common import END_TOKEN, PIN_COLOR, REPEAT_COLOR, ViewOptions, check_pinned, repeated_ngram_steps
from .compare import differing_steps

GENERATE_RGB = (59, 111, 182)
COPY_RGB = (232, 116, 59)


def token_color(step: Step) -> str:
    """Background colour: blue when generated (p_gen → 1), orange when copied (p_gen → 0); models
    without a copy switch are shaded by the token's probability."""
    if step.p_gen is None:
        alpha = 0.12 + 0.5 * float(np.exp(step.logprob))
        return f"rgba({GENERATE_RGB[0]},{GENERATE_RGB[1]},{GENERATE_RGB[2]},{alpha:.2f})"
    copy_share = 1.0 - float(step.p_gen)
    rgb = [round(g + (c - g) * copy_share) for g, c in zip(GENERATE_RGB, COPY_RGB)]
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},0.35)"


def token_tooltip(index: int, step: Step, source_tokens: Sequence[str]) -> str:
    """Hover text of one output token (plain text; escaped by the caller)."""
    parts = [f"step {index}", f"p = {float(np.exp(step.logprob)):.3f}"]
    if step.p_gen is not None:
        parts.append(f"p_gen = {step.p_gen:.3f} (copy share {1 - step.p_gen:.0%})")
    if step.copied_from:
        where = ", ".join(f"{i} ({source_tokens[i]})" for i in step.copied_from[:5] if i < len(source_tokens))
        more = f" and {len(step.copied_from) - 5} more" if len(step.copied_from) > 5 else ""
        parts.append(f"in the source at {where}{more}")
    elif step.p_gen is not None:
        parts.append("not in the source: generated")
    return " · ".join(parts)


def output_html(trace: GenerationTrace, options: Optional[ViewOptions] = None) -> str:
    """The output as coloured, hoverable, clickable tokens, with a legend."""
    options = options or ViewOptions()
    steps = trace.steps
    if not steps:
        return "<div class='gs-output gs-empty'>No output yet.</div>"
    pinned = check_pinned(options.pinned_step, len(steps))
    repeated = repeated_ngram_steps([s.token for s in steps], options.repeat_ngram)
    forms = trace.extra.get("cased_forms") or {}  # the source's spelling of words a lowercasing model wrote
    spans = [_token_span(i, step, trace.source_tokens, i == pinned, i in repeated, forms.get(step.token))
             for i, step in enumerate(steps)]
    return (f"<div class='gs-output' style='line-height:2.1;font-size:1.05rem'>{' '.join(spans)}</div>"
            f"{_legend(steps, options.repeat_ngram)}")


def _token_span(index: int, step: Step, source_tokens: Sequence[str], pinned: bool, repeated: bool,
                spelling: Optional[str] = None) -> str:
    style = [f"background:{token_color(step)}", "padding:2px 5px", "border-radius:4px", "cursor:pointer"]
    if pinned:
        style.append(f"outline:2px solid {PIN_COLOR}")
    if repeated:
        style.append(f"text-decoration:underline wavy {REPEAT_COLOR}")
    if step.token == END_TOKEN:
        style += ["color:#777", "font-style:italic", "font-size:0.85em"]
    tooltip = html.escape(token_tooltip(index, step, source_tokens), quote=True)
    return (f"<span class='gs-tok{' gs-pinned' if pinned else ''}' data-step='{index}' title=\"{tooltip}\" "
            f"style='{';'.join(style)}'>{html.escape(spelling or display_token(step.token))}</span>")


def display_token(token: str) -> str:
    """A token as a reader sees it: subword word-start markers (SentencePiece "▁", byte-level BPE "Ġ")
    at the start of a piece are dropped, or shown as "␣" when the piece is nothing else (the raw piece
    is in the tooltip)."""
    if token[:1] in ("▁", "Ġ"):
        return token[1:] or "␣"
    return token


def _legend(steps: Sequence[Step], n: int) -> str:
    if all(s.p_gen is not None for s in steps):
        generated, copied = token_color(Step("", 0, 0.0, p_gen=1.0)), token_color(Step("", 0, 0.0, p_gen=0.0))
        swatches = (f"<span style='background:{generated};padding:0 6px'>generated</span> "
                    f"<span style='background:{copied};padding:0 6px'>copied</span> colour = p_gen")
    else:
        swatches = "no copy switch: shade = probability of the token"
    wavy = f"<span style='text-decoration:underline wavy {REPEAT_COLOR}'>wavy</span>"
    repeat = f" · {wavy} = repeated {n}-gram" if n else ""
    return (f"<div class='gs-legend' style='font-size:0.8rem;color:#555;margin-top:4px'>{swatches}{repeat}"
            " · hover a token for values, click it to pin its step</div>")


def aligned_words(text_a: str, text_b: str) -> list[tuple[str, str, str]]:
    """The two outputs' words (CJK characters one by one) aligned by ``difflib``: rows of
    (operation, word in A, word in B) with operation equal / replace / delete / insert."""
    a, b = _words(text_a), _words(text_b)
    rows = []
    for operation, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            rows.append((operation, a[i1 + k] if i1 + k < i2 else "", b[j1 + k] if j1 + k < j2 else ""))
    return rows


_SPECIAL = re.compile(r"(</?[A-Za-z_|]{1,16}>)")  # <unk>, </s>, <pad>, <|endoftext|>: one word each


def _words(text: str) -> list[str]:
    """GenScope tokens of ``text``, keeping special tokens such as ``<unk>`` whole."""
    return [w for i, part in enumerate(_SPECIAL.split(text))
            for w in ([part] if i % 2 else tokenize(part, lowercase=False))]


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def diff_html(trace_a: GenerationTrace, trace_b: GenerationTrace,
              labels: tuple[str, str] = ("original", "changed")) -> str:
    """Both outputs as sentences, the first differing decoding step, and the two texts aligned word by
    word (``difflib``), so an insertion or a different tokenizer does not make every later step differ."""
    differ = differing_steps(trace_a.steps, trace_b.steps)
    rows = aligned_words(trace_a.output_text, trace_b.output_text)
    counts = {op: sum(1 for r in rows if r[0] == op) for op in ("equal", "replace", "delete", "insert")}
    summary = ("the two outputs are identical" if not differ else
               f"first difference at step {differ[0]}; by text, {_count(counts['equal'], 'word')} the same, "
               f"{counts['replace']} replaced, {counts['delete']} only in {labels[0]}, "
               f"{counts['insert']} only in {labels[1]}")
    colors = {"replace": ("#fde0dd", "#e5f5e0"), "delete": ("#fde0dd", ""), "insert": ("", "#e5f5e0")}
    cells_a = [(word, colors.get(op, ("", ""))[0]) for op, word, _ in rows]
    cells_b = [(word, colors.get(op, ("", ""))[1]) for op, _, word in rows]
    table = (f"<div style='overflow-x:auto'><table class='gs-diff' style='border-collapse:collapse;font-size:0.9rem'>"
             f"{_token_row(labels[0], cells_a)}{_token_row(labels[1], cells_b)}</table></div>")
    return (f"<div class='gs-compare'>{_sentence_row(labels[0], trace_a)}{_sentence_row(labels[1], trace_b)}"
            f"<div style='margin:6px 0;color:{PIN_COLOR if differ else '#2e7d32'}'>{html.escape(summary)}</div>"
            f"{table}</div>")


def _sentence_row(name: str, trace: GenerationTrace) -> str:
    path = trace.chosen_path()
    score = trace.node(path[-1]).score if len(path) > 1 else 0.0
    return (f"<div style='margin:2px 0'><b>{html.escape(name)}</b> "
            f"<span style='color:#888'>({html.escape(trace.model)}, log p {score:.2f})</span>: "
            f"{html.escape(trace.output_text)}</div>")


def _token_row(name: str, cells: Sequence[tuple[str, str]]) -> str:
    """One aligned row: each word in its cell, gaps as "—", changed cells coloured."""
    gap = "<span style='color:#bbb'>—</span>"
    tds = "".join(
        f"<td style='padding:2px 6px;border:1px solid #eee;{'background:' + color if color else ''}'>"
        f"{html.escape(word) if word else gap}</td>" for word, color in cells)
    return f"<tr><th style='text-align:left;padding-right:8px'>{html.escape(name)}</th>{tds}</tr>"
