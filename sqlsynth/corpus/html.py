"""HTML → readable plain text with the standard library's HTML parser (tolerant of broken markup).

What survives: entities decoded (``&amp;`` → ``&``), paragraphs and headings as blank-line separated
blocks, ``<pre>`` code blocks verbatim inside ``` fences, inline ``<code>`` in backticks, list items as
``- item`` / ``1. item`` (nested lists indented), links as ``text (url)``, images as ``[image: alt]``,
table cells separated by `` | ``. Scripts and styles are dropped. Unclosed or stray tags are tolerated
(the parser never raises on them): text is never lost because the markup is not well-formed.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK2 = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "dl", "figure", "section",
           "article", "header", "footer", "aside", "nav", "main", "details", "summary"}
_BLOCK1 = {"div", "tr", "dt", "dd", "figcaption", "caption", "address", "center"}
_SKIP = {"script", "style", "head", "template", "noscript"}
_SPACE = re.compile(r"\s+")


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.pre = 0
        self.lists: list[list] = []  # [kind, counter]
        self.links: list[tuple[str | None, int]] = []
        self.cells = 0

    # -- output primitives ---------------------------------------------------------------------------
    def _text(self, data: str) -> None:
        text = _SPACE.sub(" ", data)
        if not text:
            return
        if not self.parts or self.parts[-1].endswith("\n"):
            text = text.lstrip()
        elif self.parts[-1].endswith(" ") and text.startswith(" "):
            text = text[1:]
        if text:
            self.parts.append(text)

    def _raw(self, text: str) -> None:
        self.parts.append(text)

    def _break(self, newlines: int) -> None:
        if not self.parts:
            return
        while self.parts and self.parts[-1].strip(" ") == "" and not self.parts[-1].endswith("\n"):
            self.parts.pop()
        if self.parts:
            self.parts[-1] = self.parts[-1].rstrip(" ")
        tail = "".join(self.parts[-3:])
        have = len(tail) - len(tail.rstrip("\n"))
        if have < newlines:
            self.parts.append("\n" * (newlines - have))

    # -- parser callbacks ----------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
            return
        if self.skip:
            return
        attributes = dict(attrs)
        if tag == "br":
            self._raw("\n") if self.pre else self._break(1)
        elif tag == "pre":
            self._break(2)
            self._raw("```\n")
            self.pre += 1
        elif tag == "code" and not self.pre:
            self._text(" ") if self.parts and not self.parts[-1].endswith((" ", "\n")) else None
            self._raw("`")
        elif tag in ("ul", "ol"):
            self._break(1 if self.lists else 2)
            self.lists.append([tag, 0])
        elif tag == "li":
            self._break(1)
            kind = self.lists[-1] if self.lists else ["ul", 0]
            kind[1] += 1
            indent = "  " * max(len(self.lists) - 1, 0)
            self._raw(indent + (f"{kind[1]}. " if kind[0] == "ol" else "- "))
        elif tag == "a":
            self.links.append((attributes.get("href"), len(self.parts)))
        elif tag == "img":
            alt = (attributes.get("alt") or "").strip()
            if alt:
                self._text(f" [image: {alt}] ")
        elif tag == "hr":
            self._break(2)
            self._raw("---")
            self._break(2)
        elif tag in ("td", "th"):
            if self.cells:
                self._raw(" | ")
            self.cells += 1
        elif tag in _BLOCK2:
            self._break(2)
        elif tag in _BLOCK1:
            self._break(1)
        if tag == "tr":
            self.cells = 0

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "img", "hr"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(self.skip - 1, 0)
            return
        if self.skip:
            return
        if tag == "pre" and self.pre:
            self.pre -= 1
            if self.parts and not self.parts[-1].endswith("\n"):
                self._raw("\n")
            self._raw("```")
            self._break(2)
        elif tag == "code" and not self.pre:
            if self.parts and self.parts[-1].endswith(" "):
                self.parts[-1] = self.parts[-1].rstrip(" ")
            self._raw("`")
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._break(1 if self.lists else 2)
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.parts[start:]).strip()
            if href and not href.startswith(("#", "javascript:")) and href not in label:
                self._text(f" ({href})" if label else href)
        elif tag in _BLOCK2:
            self._break(2)
        elif tag in _BLOCK1 or tag == "li":
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            self._raw(data)
        else:
            self._text(data)

    def result(self) -> str:
        text = "".join(self.parts)
        lines = [line.rstrip() for line in text.split("\n")]
        text = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def html_to_text(html: str | None) -> str | None:
    """Readable text of an HTML fragment or page; NULL stays NULL."""
    if html is None:
        return None
    parser = _Extractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # the stdlib parser tolerates nearly anything; never lose the text if it does not
        import html as html_module

        return html_module.unescape(re.sub(r"<[^>]*>", " ", html)).strip()
    if parser.pre:  # an unclosed <pre>: close the fence
        parser._raw("\n```")
    return parser.result()
