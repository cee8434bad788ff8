"""Turning repo content into safe HTML: model cards (Markdown with tables, highlighted code, images and
math as MathML, no script) and highlighted source files.

A card's own HTML keeps no ``id`` (it could clobber the page's elements for scripts), no ``class`` (it could
dress itself as the page's buttons, chips or notices) and no ``<input>`` or form (spoofed sign-in forms).
Code blocks are highlighted by us after sanitising: the sanitiser sees a random placeholder in their
place, so Pygments' classes appear only in HTML we generated from escaped text."""

from __future__ import annotations

import html
import secrets
from typing import Any

import latex2mathml.converter
import nh3
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name, guess_lexer_for_filename
from pygments.util import ClassNotFound

_MATH_TAGS = {
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mfrac", "msqrt", "mroot", "msub", "msup", "msubsup",
    "munder", "mover", "munderover", "mtable", "mtr", "mtd", "mspace", "mstyle", "semantics", "annotation",
    "menclose", "mpadded", "mphantom",
}  # fmt: skip
_ALLOWED_TAGS = set(nh3.ALLOWED_TAGS) | _MATH_TAGS | {
    "span", "div", "pre", "code", "table", "thead", "tbody", "tr", "th", "td", "img", "details", "summary",
    "sup", "sub", "del", "hr",
}  # fmt: skip
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "align"},
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "math": {"display", "xmlns"},
    "mo": {"stretchy", "fence", "separator", "lspace", "rspace"},
    "mstyle": {"displaystyle", "scriptlevel"},
    "mspace": {"width"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan"},
}
_FORMATTER = HtmlFormatter(nowrap=False, cssclass="highlight")


def highlight_code(code: str, lang: str | None) -> str:
    """A snippet of code as highlighted HTML (escaped)."""
    return _highlight_code(code, lang)


def _highlight_code(code: str, lang: str | None) -> str:
    try:
        lexer = get_lexer_by_name(lang) if lang else TextLexer()
    except ClassNotFound:
        lexer = TextLexer()
    return highlight(code, lexer, _FORMATTER)


def _math(latex: str, display: bool) -> str:
    try:
        return latex2mathml.converter.convert(latex, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - a malformed formula is shown as its source, never an error page
        return f"<code>{html.escape(latex)}</code>"


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(dollarmath_plugin, allow_space=True, double_inline=True)

    def fence(renderer: Any, tokens: list[Any], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        code = _highlight_code(token.content, token.info.strip().split(" ")[0] or None)
        if not isinstance(env, dict) or "code_blocks" not in env:
            return code
        env["code_blocks"].append(code)  # put back after sanitising, in place of this placeholder
        return _code_placeholder(env["nonce"], len(env["code_blocks"]) - 1)

    md.add_render_rule("fence", fence)
    md.add_render_rule("math_inline", lambda renderer, tokens, idx, options, env: _math(tokens[idx].content, False))
    md.add_render_rule(
        "math_inline_double", lambda renderer, tokens, idx, options, env: _math(tokens[idx].content, True)
    )
    md.add_render_rule("math_block", lambda renderer, tokens, idx, options, env: _math(tokens[idx].content, True))
    return md


_MD = _markdown()


def _code_placeholder(nonce: str, index: int) -> str:
    return f"<pre>hubstead-code-{nonce}-{index}</pre>"


def strip_front_matter(text: str) -> str:
    stripped = text.lstrip("\ufeff")
    if not stripped.startswith("---"):
        return text
    lines = stripped.splitlines()
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "\n".join(lines[index + 1 :])
    return text


def render_markdown(text: str, *, image_base: str | None = None) -> str:
    """A card as sanitized HTML: the YAML header removed, raw HTML cleaned (no scripts, no event handlers).

    Relative image and link targets resolve against ``image_base`` (the repo's raw file URL)."""
    env: dict[str, Any] = {"code_blocks": [], "nonce": secrets.token_hex(16)}
    rendered = _MD.render(strip_front_matter(text), env)

    def rewrite(tag: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src"):
            lowered = value.strip().lower()
            if lowered.startswith(("javascript:", "data:", "vbscript:")):
                return None
            if image_base and tag == "img" and not lowered.startswith(("http://", "https://", "/", "#")):
                return f"{image_base}/{value.lstrip('./')}"
        return value

    cleaned = nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        attribute_filter=rewrite,
        link_rel="noopener noreferrer nofollow",
        url_schemes={"http", "https", "mailto"},
    )
    for index, code in enumerate(env["code_blocks"]):
        cleaned = cleaned.replace(_code_placeholder(env["nonce"], index), code, 1)
    return cleaned


def highlight_file(path: str, text: str) -> str:
    """A source file as highlighted HTML (plain text when the type is unknown)."""
    try:
        lexer = guess_lexer_for_filename(path, text)
    except ClassNotFound:
        lexer = TextLexer()
    return highlight(text, lexer, HtmlFormatter(linenos="table", cssclass="highlight"))


def highlight_css() -> str:
    light = HtmlFormatter(style="default").get_style_defs(".highlight")
    dark = HtmlFormatter(style="monokai").get_style_defs("html.dark .highlight")
    media_dark = HtmlFormatter(style="monokai").get_style_defs(":root:not(.light) .highlight")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{media_dark}\n}}\n{dark}\n"
