"""HTML → text for CRAG's search-result pages, with a real HTML parser (selectolax, the ``crag`` extra).

The official RAG baseline parses each page with BeautifulSoup, takes ``get_text(" ", strip=True)`` and
splits it into sentences; we do the same with selectolax (Lexbor), dropping non-content nodes first
(``script``, ``style``, ``noscript``, ``template``, ``svg``, ``head``) and joining text nodes of block
elements with newlines so paragraphs stay apart (inline text such as ``<b>`` stays in its line).
"""

from __future__ import annotations

import re

from llmlab.core.errors import MissingExtraError

DROP = ("script", "style", "noscript", "template", "svg", "head", "iframe")
BLOCKS = ("p, div, li, br, tr, td, th, h1, h2, h3, h4, h5, h6, section, article, header, footer, blockquote, "
          "pre, dd, dt, table, ul, ol, main, nav, aside, figure, figcaption, hr")
_SPACES = re.compile(r"[ \t\r\f\v]+")


def html_to_text(html: str) -> str:
    r"""The visible text of an HTML page, one block per line.

    Example:
        >>> html_to_text("<html><head><title>t</title></head><body><p>Hello <b>world</b></p><script>x=1</script>"
        ...              "<div>Second</div></body></html>")
        'Hello world\nSecond'
    """
    try:
        from selectolax.lexbor import LexborHTMLParser
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtraError("selectolax", "crag", "HTML-to-text for CRAG pages") from None
    if not html.strip():
        return ""
    tree = LexborHTMLParser(html)
    tree.strip_tags(list(DROP))
    root = tree.body if tree.body is not None else tree.root
    if root is None:
        return ""
    for node in root.css(BLOCKS):
        node.insert_after("\n")  # block boundaries become line breaks; inline text stays joined
    text = root.text(separator="", strip=False)
    lines = (_SPACES.sub(" ", ln).strip() for ln in text.split("\n"))
    return "\n".join(ln for ln in lines if ln)
