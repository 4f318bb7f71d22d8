"""Text a user chose (file, column and model names, descriptions), made safe to show in
Streamlit's Markdown. No streamlit import: the session helpers and the widgets both use it."""

from __future__ import annotations

import re

# Characters that Markdown (CommonMark + GitHub), LaTeX ($) and Streamlit's directives
# (:red[..]) give a meaning to anywhere in a line; each is shown as typed once backslash-escaped.
_MARKDOWN_INLINE = set("\\`*[]<>~$|")
_LEADING_BLOCK = re.compile(r"^(\s*)([#+\->=]|\d+(?=[.)]))")


def plain(text) -> str:
    """``text`` (a file name, column name, model description: anything a user chose) escaped
    so that Streamlit's Markdown shows it as typed: no link, image, emphasis, heading, list,
    formula or colour directive; line breaks become spaces. Ordinary names and sentences
    ("server_metrics.csv", "Trained on 1,200 rows (normal).") are left as they are."""
    flat = " ".join(str(text).splitlines())
    out = []
    for i, ch in enumerate(flat):
        before = flat[i - 1] if i else " "
        after = flat[i + 1] if i + 1 < len(flat) else " "
        if (
            ch in _MARKDOWN_INLINE
            or (ch == "_" and not (before.isalnum() and after.isalnum()))
            or (ch == ":" and after.isalpha())
        ):
            out.append("\\" + ch)
        else:
            out.append(ch)
    escaped = "".join(out)
    lead = _LEADING_BLOCK.match(escaped)
    if lead:  # a heading, list item or quote at the start of the text
        at = lead.end()
        if lead.group(2)[0].isdigit():
            return escaped[:at] + "\\" + escaped[at:]
        return escaped[: lead.start(2)] + "\\" + escaped[lead.start(2) :]
    return escaped
