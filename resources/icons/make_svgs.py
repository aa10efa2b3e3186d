"""Write the tray icon SVG sources (one per state). Run: python resources/icons/make_svgs.py."""

from __future__ import annotations

from pathlib import Path

# A dark rounded tile with a white ">_" prompt (readable on light panels thanks to the tile and on
# dark panels thanks to the light outline), and a state badge in the lower right corner.
STATES = {
    "ok": ("#2fbf71", "none"),
    "busy": ("#f2a900", "M44 52 l0 -5 M44 52 l4 2"),
    "error": ("#e5484d", "M44 46 v7 M44 57 v1"),
    "offline": ("#8b8d98", "M39 52 h10"),
}

TEMPLATE = """<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <rect x="3" y="3" width="54" height="54" rx="12" fill="#1d2a44"
        stroke="#e8ecf4" stroke-width="3"/>
  <path d="M14 18 L27 30 L14 42" fill="none" stroke="#ffffff" stroke-width="6"
        stroke-linecap="round" stroke-linejoin="round"/>
  <path d="M30 43 H44" stroke="#ffffff" stroke-width="6" stroke-linecap="round"/>
  <circle cx="44" cy="52" r="11" fill="{color}" stroke="#e8ecf4" stroke-width="3"/>
  <path d="{mark}" stroke="#ffffff" stroke-width="3.5" stroke-linecap="round" fill="none"/>
</svg>
"""


def main() -> None:
    here = Path(__file__).resolve().parent
    for state, (color, mark) in STATES.items():
        svg = TEMPLATE.format(color=color, mark=mark if mark != "none" else "M39 52 l3 3 l6 -6")
        (here / f"clearml-tray-{state}.svg").write_text(svg, encoding="utf-8")


if __name__ == "__main__":
    main()
