"""XML read safely: a DOCTYPE is refused before anything in it is read (entity expansion and
external entities live there, and no annotation format needs one), and large files stream."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator
from xml.etree import ElementTree
from xml.parsers import expat

from formats.base import NotThisFormat

CHUNK = 1 << 20


class _NoDoctype(ElementTree.TreeBuilder):
    def doctype(self, name, pubid, system):
        # XMLParser calls this when the declaration starts, before any entity can be expanded.
        raise NotThisFormat("it declares a DOCTYPE, which no annotation format needs (refused: entities could expand without end)")


def read_xml(path: Path) -> ElementTree.Element:
    """A whole XML document (VOC's are one image each). Raises NotThisFormat on a DOCTYPE and
    ElementTree.ParseError when malformed."""
    parser = ElementTree.XMLParser(target=_NoDoctype())
    with open(path, "rb") as raw:
        for chunk in iter(lambda: raw.read(CHUNK), b""):
            parser.feed(chunk)
    return parser.close()


def xml_children(path: Path, name: str) -> Iterator[ElementTree.Element]:
    """The document element first (its attributes, no children), then each of its children whole,
    in order, parsed in chunks so that memory holds one child at a time.

    Raises NotThisFormat (with `name`, the file as the user knows it) when the XML is malformed or
    has a DOCTYPE.
    """
    parser = expat.ParserCreate()
    parser.buffer_text = True
    stack: list[ElementTree.Element] = []
    ready: list[ElementTree.Element] = []

    def start(tag, attributes):
        element = ElementTree.Element(tag, attributes)
        if len(stack) > 1:
            stack[-1].append(element)
        elif not stack:
            ready.append(element)
        stack.append(element)

    def end(tag):
        element = stack.pop()
        if len(stack) == 1:
            ready.append(element)

    def data(text):
        # Only leaves' text means anything in these formats; the indentation between elements
        # (including the document element's, which would grow with the file) is dropped.
        if len(stack) > 1 and not len(stack[-1]):
            stack[-1].text = (stack[-1].text or "") + text

    def refuse(*_):
        raise NotThisFormat(f"{name}: the XML has a DOCTYPE; it is refused (entities could expand or read other files)")

    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, data
    parser.StartDoctypeDeclHandler = refuse
    with path.open("rb") as stream:
        while True:
            chunk = stream.read(CHUNK)
            try:
                parser.Parse(chunk, not chunk)
            except expat.ExpatError as error:
                raise NotThisFormat(f"{name} is not well-formed XML: {error}") from None
            yield from ready
            ready.clear()
            if not chunk:
                return
