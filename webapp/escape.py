"""Showing user-supplied text (run, file and class names, paths, messages that quote them) as text.

Streamlit renders the body of st.markdown, st.caption, st.error/warning/info, metric labels and progress text
as GitHub Markdown with its own directives (`:red[...]`, `:material/icon:`), and Plotly renders a small HTML
subset in trace names, axis labels and hover text. A folder named `[x](https://evil) :red[!]` or a class
named `<a href=...>` must show those characters, not become a link, an image or colored text:

- `md(text)`: for a Markdown body: each character that could start markup is backslash-escaped;
- `code(text)`: as a Markdown code span (monospace, shown as typed);
- `html(text)`: for HTML, also when it passes through Markdown (Plotly text, legend chips): the same
  characters as numeric character references, which neither HTML nor Markdown reads as markup.

Characters that cannot start markup where they stand stay as they are, so a path reads (and searches) as
typed: `.`, `/`, `-` and `(` in `runs/lr-0.1 (copy)/model.pt`. All three first replace control characters (a
newline would start a new Markdown block; ANSI escapes, bidi overrides) and undecodable file-name bytes with
U+FFFD.
"""
from __future__ import annotations

import re

from seg.paths import printable

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Markup wherever they stand: escapes, code, emphasis, strikethrough, math, HTML and autolinks, entities,
# email autolinks, links and images (`!` and `(` are inert once `[` and `]` are escaped).
_ALWAYS = set("\\`*~$<>&@[]")
_LINE_START = set("#+-=>|")  # headings, lists, blockquotes, tables: only at the start of a body


def plain(text) -> str:
    """`str(text)` with control characters and undecodable bytes replaced by U+FFFD (one line of text)."""
    return _CONTROL.sub("\ufffd", printable(str(text)))


def _is_markup(text: str, i: int) -> bool:
    """Whether character `i` of `text` could start or close Markdown markup (or a Streamlit directive)."""
    ch = text[i]
    before, after = text[i - 1] if i else "", text[i + 1] if i + 1 < len(text) else ""
    if ch in _ALWAYS or (i == 0 and ch in _LINE_START):
        return True
    if ch == ":":  # a directive (:red[, :material/x:, :smile:) or a URL scheme (https://) starts here
        return after.isalpha() or after == "/"
    if ch == "_":  # emphasis; an underscore between two letters or digits cannot open or close it
        return not (before.isalnum() and after.isalnum())
    if ch in ".)" and i and text[:i].isdigit():  # "1. " / "1) ": an ordered list
        return True
    # "www." starts an autolink
    return ch == "." and text[max(0, i - 3):i].lower() == "www" and (i == 3 or not text[i - 4].isalnum())


def _escape(text, escaped) -> str:
    text = plain(text)
    return "".join(escaped(ch) if _is_markup(text, i) else ch for i, ch in enumerate(text))


def md(text) -> str:
    """`text` escaped for a Streamlit Markdown body: it renders as the same characters, never as markup."""
    return _escape(text, lambda ch: "\\" + ch)


def code(text) -> str:
    """`text` as a Markdown code span: a fence longer than any backtick run in it, so it cannot close early."""
    text = plain(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def html(text) -> str:
    """`text` escaped for HTML that may pass through Markdown (Plotly labels, legend chips)."""
    return _escape(text, lambda ch: f"&#{ord(ch)};")
