"""Line and stacked-bar charts as standalone SVG files, with no plotting library (experiments/results_page.py)."""
import math
from xml.sax.saxutils import escape

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
WIDTH, HEIGHT = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 170, 36, 48


def ticks(low, high, count=5):
    """Round tick values covering [low, high]."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    first = math.floor(low / step) * step
    values, v = [], first
    while v <= high + step * 1e-9:
        values.append(round(v, 10))
        v += step
    if values[-1] < high:
        values.append(round(values[-1] + step, 10))
    return values


def label(v):
    return f"{v:g}" if abs(v) < 1e5 else f"{v:.2g}"


def frame(title, x_label, y_label, xs, ys, x_ticks=True):
    """The SVG prologue, axes and grid; returns (parts, x→pixel, y→pixel)."""
    xt, yt = ticks(min(xs), max(xs)), ticks(min(ys), max(ys))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    px = lambda x: LEFT + (x - xt[0]) / (xt[-1] - xt[0]) * plot_w
    py = lambda y: TOP + plot_h - (y - yt[0]) / (yt[-1] - yt[0]) * plot_h
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13">{escape(title)}</text>']
    for v in xt if x_ticks else []:
        parts.append(f'<line x1="{px(v):.1f}" y1="{TOP}" x2="{px(v):.1f}" y2="{TOP + plot_h}" stroke="#eee"/>')
        parts.append(f'<text x="{px(v):.1f}" y="{TOP + plot_h + 14}" text-anchor="middle">{label(v)}</text>')
    for v in yt:
        parts.append(f'<line x1="{LEFT}" y1="{py(v):.1f}" x2="{LEFT + plot_w}" y2="{py(v):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{label(v)}</text>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text transform="translate(14,{TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    return parts, px, py


def legend(parts, names):
    for i, name in enumerate(names):
        y = TOP + 8 + 16 * i
        parts.append(f'<rect x="{WIDTH - RIGHT + 10}" y="{y - 8}" width="12" height="10" fill="{COLORS[i % len(COLORS)]}"/>')
        parts.append(f'<text x="{WIDTH - RIGHT + 26}" y="{y + 1}">{escape(name)}</text>')


def lines(path, title, x_label, y_label, series):
    """series: {name: [(x, y), …]}, drawn as polylines (points marked when there are few)."""
    points = [p for s in series.values() for p in s]
    parts, px, py = frame(title, x_label, y_label, [p[0] for p in points], [p[1] for p in points])
    for i, (name, s) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="'
                     + " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s) + '"/>')
        if len(s) <= 12:
            parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{color}"/>' for x, y in s]
    legend(parts, list(series))
    write(path, parts)


def stacked_bars(path, title, y_label, bars, categories):
    """bars: [(name, {category: value})], one vertical bar per name, stacked by category."""
    totals = [sum(v.get(c, 0) for c in categories) for _, v in bars]
    parts, px, py = frame(title, "", y_label, [0, len(bars)], [0, max(totals)], x_ticks=False)
    slot = (WIDTH - LEFT - RIGHT) / len(bars)
    for i, (name, values) in enumerate(bars):
        bottom = 0.0
        x = LEFT + slot * i + slot * 0.15
        for j, c in enumerate(categories):
            v = values.get(c, 0)
            if v > 0:
                parts.append(f'<rect x="{x:.1f}" y="{py(bottom + v):.1f}" width="{slot * 0.7:.1f}" height="{py(bottom) - py(bottom + v):.1f}" '
                             f'fill="{COLORS[j % len(COLORS)]}"/>')
            bottom += v
        parts.append(f'<text transform="translate({x + slot * 0.35:.1f},{HEIGHT - BOTTOM + 6}) rotate(35)" font-size="10">{escape(name)}</text>')
    legend(parts, categories)
    write(path, parts)


def write(path, parts):
    with open(path, "w") as f:
        f.write("\n".join(parts + ["</svg>"]) + "\n")
