"""HTML pieces of the report: the stylesheet, the media fallback script, tables and the page builder."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from urllib.parse import quote


ASSETS = "report_files"


CSS = """
:root { --fg:#1d232b; --muted:#5c6773; --line:#dfe3e8; --bg:#f6f7f9; --card:#fff; --accent:#2f6fde; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#1d2733; color:#f3f5f8; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:600; }
header p { margin:0; color:#b9c3cf; }
nav { position:sticky; top:0; z-index:2; background:#263342; padding:8px 32px; display:flex; flex-wrap:wrap; gap:6px 16px; }
nav a { color:#d5deea; text-decoration:none; font-size:13px; }
nav a:hover { color:#fff; text-decoration:underline; }
main { max-width:1180px; margin:0 auto; padding:20px 24px 48px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 22px; margin:18px 0; }
h2 { margin:0 0 2px; font-size:19px; }
h2 .kind { font-size:12px; font-weight:500; color:var(--muted); background:var(--bg); border:1px solid var(--line);
           border-radius:10px; padding:1px 8px; margin-left:8px; vertical-align:middle; }
h3 { font-size:15px; margin:18px 0 6px; color:#2a3440; }
.sub { color:var(--muted); margin:0 0 10px; font-size:13px; }
table { border-collapse:collapse; margin:6px 0 10px; font-size:13.5px; }
th, td { padding:4px 12px 4px 0; text-align:left; border-bottom:1px solid var(--line); }
th { color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; padding-left:12px; }
tr.ours td { font-weight:600; }
tr.published td { font-style:italic; color:var(--muted); }
.gallery { display:flex; flex-wrap:wrap; gap:14px; align-items:flex-start; }
figure { margin:0; max-width:100%; }
figure img, figure video { max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; background:#111; }
figure img.plot { background:#fff; }
figcaption { font-size:12.5px; color:var(--muted); margin-top:4px; max-width:560px; }
.pixel { image-rendering: pixelated; }
details { margin:8px 0; }
summary { cursor:pointer; color:var(--accent); font-size:13.5px; }
pre { background:#f1f3f6; border:1px solid var(--line); border-radius:6px; padding:10px 12px; overflow:auto;
      font-size:12.5px; line-height:1.4; }
.status-running { color:#b26b00; }
footer { color:var(--muted); font-size:12px; text-align:center; margin:24px 0; }
"""

# MP4 first; where the browser cannot decode it, the GIF beside it takes its place.
SCRIPT = """
document.querySelectorAll('video[data-gif]').forEach(function (v) {
  function fallback() {
    if (!v.parentNode) return;
    var img = document.createElement('img');
    img.src = v.getAttribute('data-gif'); img.alt = v.getAttribute('aria-label') || '';
    img.className = v.className; v.parentNode.replaceChild(img, v);
  }
  var s = v.querySelector('source');
  if (s) s.addEventListener('error', fallback);
  v.addEventListener('error', fallback);
  if (s && !v.canPlayType(s.type)) fallback();
});
"""


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return _esc(v)


CSS_DPI = 96  # CSS pixels per inch


def print_width(path: Path) -> int | None:
    """The width in CSS pixels of a figure shown at its print size: its pixels over the dots per
    inch it was saved at (matplotlib writes them into the PNG), at 96 CSS px per inch."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            dpi = im.info.get("dpi", (None,))[0]
            return round(im.width * CSS_DPI / dpi) if dpi and dpi > 20 else None
    except (OSError, ValueError, ImportError):
        return None


class Page:
    """Collects sections; turns paths into relative, URL-quoted links from the report's folder."""

    def __init__(self, root: Path):
        self.root = root
        self.sections: list[tuple[str, str, str, str]] = []  # (anchor, title, html, kind)

    def link(self, path: Path) -> str:
        rel = os.path.relpath(Path(path).resolve(), self.root.resolve())
        return quote(Path(rel).as_posix())

    def image(self, path: Path, caption: str = "", plot: bool = True, width: int | None = None) -> str:
        """A figure; a plot without ``width`` is shown at its print size (``print_width``), never
        wider than the page: text set at 10 pt reads as 13 px, like the captions."""
        if not Path(path).is_file():
            return ""
        width = width or (print_width(path) if plot else None)
        w = f' width="{width}"' if width else ""
        cls = "plot" if plot else "pixel"
        cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
        return f'<figure><img class="{cls}" src="{self.link(path)}" alt="{_esc(caption or Path(path).name)}"{w}>{cap}</figure>'

    def video(self, mp4: Path, caption: str = "", width: int | None = None) -> str:
        mp4, gif = Path(mp4), Path(mp4).with_suffix(".gif")
        if not mp4.is_file():
            return self.image(gif, caption, plot=False, width=width)
        w = f' width="{width}"' if width else ""
        g = f' data-gif="{self.link(gif)}"' if gif.is_file() else ""
        inner = f'<img class="pixel" src="{self.link(gif)}" alt="{_esc(caption)}">' if gif.is_file() else ""
        cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
        return (f'<figure><video class="pixel" controls loop muted autoplay playsinline preload="auto"{w}{g} '
                f'aria-label="{_esc(caption)}"><source src="{self.link(mp4)}" type="video/mp4">{inner}</video>{cap}</figure>')

    def add(self, anchor: str, title: str, body: str, kind: str = "") -> None:
        self.sections.append((anchor, title, body, kind))


def _table(rows: list[list], header: list[str] | None = None, classes: list[str] | None = None) -> str:
    out = ["<table>"]
    numeric = [any(isinstance(r[i], (int, float)) for r in rows if i < len(r)) for i in range(max(map(len, rows), default=0))]
    if header:
        out.append("<tr>" + "".join(f'<th class="{"num" if i < len(numeric) and numeric[i] else ""}">{_esc(h)}</th>'
                                    for i, h in enumerate(header)) + "</tr>")
    for k, r in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        out.append(f"<tr{cls}>" + "".join(f'<td class="{"num" if numeric[i] else ""}">{_fmt(v) if i else _esc(v)}</td>'
                                          for i, v in enumerate(r)) + "</tr>")
    return "".join(out) + "</table>"


def _kv_table(d: dict) -> str:
    return _table([[k, v] for k, v in d.items() if not isinstance(v, (list, dict))])


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def _config_block(path: Path, label: str = "configuration") -> str:
    if not Path(path).is_file():
        return ""
    return f"<details><summary>{_esc(label)} ({_esc(Path(path).name)})</summary><pre>{_esc(Path(path).read_text())}</pre></details>"
