"""Write the tray icon SVG sources (one per state). Run: python resources/icons/make_svgs.py.

A rounded tile with a ">_" prompt and a large badge in the lower right corner. The states
differ in more than the badge, so that they are told apart at 16 px and by colour-blind users:
ok is the dark tile with a green check, busy adds an amber ring around the tile, error turns the
whole tile red with a "!", offline greys the tile and the prompt out with a dash. The number of
running sessions is painted into the ok and busy badges at run time (tray_app/qt/icons.py).
"""

from __future__ import annotations

from pathlib import Path

# state: (tile, outline, prompt, badge colour, badge mark)
STATES = {
    "ok": ("#1d2a44", "#e8ecf4", "#ffffff", "#2fbf71", "M40 46 l4 4 l8 -8"),
    "busy": ("#1d2a44", "#f2a900", "#ffffff", "#f2a900", "M46 39 v8 l5 3"),
    "error": ("#b3261e", "#ffd7d5", "#ffffff", "#7a1410", "M46 38 v9 M46 53 v1"),
    "offline": ("#5b5f6b", "#c9ccd4", "#c9ccd4", "#8b8d98", "M39 46 h14"),
}

TEMPLATE = """<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <rect x="3" y="3" width="54" height="54" rx="12" fill="{tile}"
        stroke="{outline}" stroke-width="{outline_width}"/>
  <path d="M11 13 L22 23 L11 33" fill="none" stroke="{prompt}" stroke-width="5.5"
        stroke-linecap="round" stroke-linejoin="round"/>
  <path d="M25 34 H33" stroke="{prompt}" stroke-width="5.5" stroke-linecap="round"/>
  <circle cx="46" cy="46" r="15" fill="{badge}" stroke="#e8ecf4" stroke-width="3"/>
  <path d="{mark}" stroke="#ffffff" stroke-width="4" stroke-linecap="round"
        stroke-linejoin="round" fill="none"/>
</svg>
"""


def main() -> None:
    here = Path(__file__).resolve().parent
    for state, (tile, outline, prompt, badge, mark) in STATES.items():
        svg = TEMPLATE.format(
            tile=tile,
            outline=outline,
            outline_width=5 if state == "busy" else 3,
            prompt=prompt,
            badge=badge,
            mark=mark,
        )
        (here / f"clearml-tray-{state}.svg").write_text(svg, encoding="utf-8")


if __name__ == "__main__":
    main()
