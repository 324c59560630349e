"""A small document (headings, paragraphs, lists, tables, images) written both as Markdown, with
images linked beside it, and as one self-contained HTML file with the images embedded."""

from __future__ import annotations

import base64
import html
from pathlib import Path

# Figures flow side by side while they fit; a caption never widens its figure beyond the image.
_STYLE = """body{font-family:system-ui,sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}code{background:#f3f3f3}
figure{display:inline-block;vertical-align:top;margin:.5em 1.5em 1em 0;max-width:100%}
figure img{display:block;max-width:100%;height:auto}
figcaption{width:0;min-width:100%;color:#555;font-size:13px;margin-top:.3em}"""


def _md_cell(value: object) -> str:
    return str(value).replace("|", "\\|")


class Document:
    def __init__(self, title: str):
        self.title = title
        self.blocks: list[tuple] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", level, text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def bullets(self, items: list[str]) -> None:
        self.blocks.append(("bullets", items))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", header, rows))

    def image(self, path: Path, caption: str) -> None:
        """An image file that lies beside the Markdown file; figures are numbered in order."""
        number = sum(kind == "image" for kind, *_ in self.blocks) + 1
        self.blocks.append(("image", Path(path), f"Figure {number}. {caption}"))

    def markdown(self, images: bool = True) -> str:
        """The document as Markdown; without images (and their captions) for a terminal."""
        out = [f"# {self.title}"]
        for kind, *rest in self.blocks:
            if kind == "heading":
                out.append("#" * rest[0] + " " + rest[1])
            elif kind == "paragraph":
                out.append(rest[0])
            elif kind == "bullets":
                out.append("\n".join(f"- {item}" for item in rest[0]))
            elif kind == "table":
                header, rows = rest
                lines = [header, ["---"] * len(header), *rows]
                out.append("\n".join("| " + " | ".join(_md_cell(c) for c in line) + " |" for line in lines))
            elif kind == "image" and images:
                out.append(f"![{rest[1].split('.')[0]}]({rest[0].name})\n\n*{rest[1]}*")
        return "\n\n".join(out) + "\n"

    def html(self) -> str:
        e = html.escape
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(self.title)}</title>",
               f"<style>{_STYLE}</style></head><body><h1>{e(self.title)}</h1>"]
        for kind, *rest in self.blocks:
            if kind == "heading":
                out.append(f"<h{rest[0]}>{e(rest[1])}</h{rest[0]}>")
            elif kind == "paragraph":
                out.append(f"<p>{e(rest[0])}</p>")
            elif kind == "bullets":
                out.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in rest[0]) + "</ul>")
            elif kind == "table":
                header, rows = rest
                head = "".join(f"<th>{e(str(c))}</th>" for c in header)
                body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif kind == "image":
                data = base64.b64encode(rest[0].read_bytes()).decode()
                out.append(f"<figure><img alt='{e(rest[1])}' src='data:image/png;base64,{data}'>"
                           f"<figcaption>{e(rest[1])}</figcaption></figure>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"
