"""Pictures of puzzles and of HRM's reasoning: Sudoku, maze and ARC grids as PNG, traces as GIF / PNG strips,
and evaluation plots (scaling curve, steps histogram).

Grids are given in puzzle terms, not token ids: Sudoku digits (0 = blank), maze token ids 1..5 (`# SGo`) or
characters, ARC colours 0..9. Every renderer returns a `PIL.Image.Image`; `save_trace` writes an animation
or a strip. Used by `hrm-solve --trace`, the `hrm-evaluate` report and the dataset cards.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dataset_scripts.formats import sudoku_box_shape

# The usual ARC palette (as on arcprize.org): black, blue, red, green, yellow, grey, magenta, orange, azure, maroon.
ARC_COLORS = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF",
              "#870C25"]
# Maze token ids (dataset encoding): 1 '#' wall, 2 ' ' open, 3 'S' start, 4 'G' goal, 5 'o' path; 0 = PAD.
MAZE_CHARS = "\0# SGo"
MAZE_COLORS = {0: "#FFFFFF", 1: "#2B2B2B", 2: "#FFFFFF", 3: "#2ECC40", 4: "#FF4136", 5: "#0074D9"}
HIGHLIGHT = "#FFD60A"  # cells that changed since the previous segment
GIVEN_INK, FILLED_INK, WRONG_INK = "#000000", "#1F5FBF", "#D62828"


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _as_grid(grid) -> np.ndarray:
    grid = np.asarray(grid)
    if grid.ndim != 2:
        raise ValueError(f"a grid must be 2-D, got shape {grid.shape}")
    return grid


def _mask(mask, shape) -> np.ndarray:
    if mask is None:
        return np.zeros(shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"mask shape {mask.shape} does not match the grid {shape}")
    return mask


def render_sudoku(grid, givens=None, solution=None, highlight=None, cell: int = 36) -> Image.Image:
    """Draw a Sudoku grid.

    Args:
        grid: (n, n) digits, 0 = blank.
        givens: (n, n) bool, or the puzzle's digit grid (non-zero = given); givens are drawn black, others blue
            (a given that the grid changed is drawn red when the digits are passed).
        solution: optional (n, n) right answer; filled digits that differ are drawn red.
        highlight: (n, n) bool; these cells get a yellow background (e.g. changed since the last segment).
        cell: pixel size of one cell.
    """
    grid = _as_grid(grid).astype(np.int64)
    n = grid.shape[0]
    if grid.shape != (n, n):
        raise ValueError(f"a Sudoku grid must be square, got {grid.shape}")
    given = np.zeros_like(grid, dtype=bool) if givens is None else np.asarray(givens) != 0
    # With the puzzle's digits as `givens`, a clue the prediction overwrote is drawn as wrong, not as a clue.
    given_digits = None if givens is None or np.asarray(givens).dtype == bool else np.asarray(givens)
    highlight = _mask(highlight, grid.shape)
    box_r, box_c = sudoku_box_shape(n)  # raises for sizes other than 4, 6, 9
    margin = 4
    size = n * cell + 2 * margin
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    font = _font(int(cell * 0.6))
    for r in range(n):
        for c in range(n):
            x0, y0 = margin + c * cell, margin + r * cell
            if highlight[r, c]:
                draw.rectangle([x0, y0, x0 + cell, y0 + cell], fill=HIGHLIGHT)
            value = int(grid[r, c])
            if value:
                ink = GIVEN_INK if given[r, c] else FILLED_INK
                if given[r, c] and given_digits is not None and int(given_digits[r, c]) != value:
                    ink = WRONG_INK
                elif solution is not None and not given[r, c] and int(np.asarray(solution)[r, c]) != value:
                    ink = WRONG_INK
                draw.text((x0 + cell / 2, y0 + cell / 2), str(value), fill=ink, font=font, anchor="mm")
    for i in range(n + 1):
        # Thick lines on box borders, thin ones inside boxes.
        width_h = 3 if i % box_r == 0 else 1
        width_v = 3 if i % box_c == 0 else 1
        p = margin + i * cell
        draw.line([(margin, p), (margin + n * cell, p)], fill="black", width=width_h)
        draw.line([(p, margin), (p, margin + n * cell)], fill="black", width=width_v)
    return img


def _maze_ids(grid) -> np.ndarray:
    grid = _as_grid(grid)
    if grid.dtype.kind in "US":
        lookup = {ch: i for i, ch in enumerate(MAZE_CHARS) if i}
        try:
            return np.vectorize(lambda ch: lookup[ch])(grid).astype(np.int64)
        except KeyError as err:
            raise ValueError(f"unknown maze character {err.args[0]!r}; expected one of '# SGo'") from None
    return grid.astype(np.int64)


def _color_cells(grid: np.ndarray, colors, highlight: np.ndarray, cell: int, line: str | None) -> Image.Image:
    h, w = grid.shape
    img = Image.new("RGB", (w * cell + 1, h * cell + 1), "white")
    draw = ImageDraw.Draw(img)
    border = max(1, cell // 8)
    for r in range(h):
        for c in range(w):
            x0, y0 = c * cell, r * cell
            draw.rectangle([x0, y0, x0 + cell, y0 + cell], fill=colors[int(grid[r, c])], outline=line)
            if highlight[r, c]:
                draw.rectangle([x0, y0, x0 + cell, y0 + cell], outline=HIGHLIGHT, width=border)
    return img


def render_maze(grid, highlight=None, cell: int = 12) -> Image.Image:
    """Draw a maze given as token ids (1 wall, 2 open, 3 start, 4 goal, 5 path) or characters `# SGo`.
    `highlight` cells get a yellow outline."""
    ids = _maze_ids(grid)
    if ids.min() < 0 or ids.max() > 5:
        raise ValueError(f"maze token ids must lie in 0..5, got {ids.min()}..{ids.max()}")
    return _color_cells(ids, MAZE_COLORS, _mask(highlight, ids.shape), cell, None)


def render_arc(grid, highlight=None, cell: int = 16) -> Image.Image:
    """Draw an ARC grid of colours 0..9 (grey cell borders); `highlight` cells get a yellow outline."""
    grid = _as_grid(grid).astype(np.int64)
    if grid.size == 0:
        return Image.new("RGB", (cell, cell), "#DDDDDD")  # an empty / undecodable prediction
    if grid.min() < 0 or grid.max() > 9:
        raise ValueError(f"ARC colours must lie in 0..9, got {grid.min()}..{grid.max()}")
    return _color_cells(grid, ARC_COLORS, _mask(highlight, grid.shape), cell, "#555555")


def render_grid(kind: str, grid, **kwargs) -> Image.Image:
    """Dispatch on the puzzle kind: `"sudoku"`, `"maze"` or `"arc"`."""
    renderers = {"sudoku": render_sudoku, "maze": render_maze, "arc": render_arc}
    if kind not in renderers:
        raise ValueError(f"unknown puzzle kind {kind!r}; expected one of {sorted(renderers)}")
    return renderers[kind](grid, **kwargs)


def add_caption(img: Image.Image, text: str, size: int = 14) -> Image.Image:
    """Return `img` with a line of text below it."""
    font = _font(size)
    pad = size + 8
    text_width = int(math.ceil(font.getlength(text))) + 8 if hasattr(font, "getlength") else 0
    out = Image.new("RGB", (max(img.width, text_width, 10), img.height + pad), "white")
    out.paste(img, (0, 0))
    ImageDraw.Draw(out).text((4, img.height + 4), text, fill="black", font=font)
    return out


def hstack(images: list[Image.Image], gap: int = 8, background: str = "white") -> Image.Image:
    """Place images side by side (top-aligned) with `gap` pixels between them."""
    if not images:
        raise ValueError("hstack needs at least one image")
    width = sum(im.width for im in images) + gap * (len(images) - 1)
    height = max(im.height for im in images)
    out = Image.new("RGB", (width, height), background)
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + gap
    return out


def trace_frames(kind: str, grids: list, *, givens=None, solution=None, captions: list[str] | None = None,
                 **kwargs) -> list[Image.Image]:
    """One image per segment: the predicted grid after each segment, with the cells that changed since the
    previous segment highlighted (nothing is highlighted on the first frame), and a caption per frame.

    Each frame's caption differs ("segment k/S" by default), which also keeps GIF writers from merging two
    identical consecutive frames into one.
    """
    if not grids:
        raise ValueError("a trace needs at least one grid")
    frames = []
    previous = None
    total = len(grids)
    for k, grid in enumerate(grids):
        grid = np.asarray(grid)
        changed = None
        if previous is not None and previous.shape == grid.shape:
            changed = previous != grid
        elif previous is not None:
            changed = np.ones(grid.shape, dtype=bool)  # the shape changed (ARC): everything is new
        extra = dict(kwargs)
        if kind == "sudoku":
            extra.update(givens=givens, solution=solution)
        img = render_grid(kind, grid, highlight=changed, **extra)
        caption = captions[k] if captions else f"segment {k + 1}/{total}"
        if changed is not None:
            caption += f"  ({int(changed.sum())} changed)"
        frames.append(add_caption(img, caption))
        previous = grid
    return frames


def save_trace(frames: list[Image.Image], path, duration_ms: int = 600) -> Path:
    """Write trace frames to `path`: an animated GIF (`.gif`, one frame per segment, looping) or a PNG strip
    (`.png`, frames side by side). Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not frames:
        raise ValueError("no frames to save")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        # All frames must share one size for an animation; pad smaller ones (ARC grids can change shape).
        width, height = max(f.width for f in frames), max(f.height for f in frames)
        padded = []
        for f in frames:
            canvas = Image.new("RGB", (width, height), "white")
            canvas.paste(f, (0, 0))
            padded.append(canvas)
        padded[0].save(path, save_all=True, append_images=padded[1:], duration=duration_ms, loop=0,
                       disposal=1, optimize=False)
    elif suffix == ".png":
        hstack(frames).save(path)
    else:
        raise ValueError(f"trace file must end in .gif or .png, got {path.name!r}")
    return path


def plot_scaling_curve(budgets, series: dict[str, list[float]], path, *, trained_steps: int | None = None,
                       title: str = "Inference-time scaling") -> Path:
    """Accuracy vs ACT segment budget (`series`: label -> accuracy per budget), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for label, values in series.items():
        ax.plot(list(budgets), [100 * v for v in values], marker="o", label=label)
    if trained_steps is not None:
        ax.axvline(trained_steps, color="grey", linestyle="--", linewidth=1, label=f"trained M_max={trained_steps}")
    top = max([100 * v for values in series.values() for v in values] + [0.0])
    ax.set_ylim(0, min(100.0, top * 1.1 + 2))
    ax.set_xlabel("max_steps (ACT segments)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(list(budgets), [str(b) for b in budgets])
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_steps_histogram(histogram: dict[int, int], path, *, title: str = "ACT steps used") -> Path:
    """Bar chart of {steps: number of puzzles}, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted(int(k) for k in histogram)
    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=120)
    ax.bar(keys, [histogram[k] if k in histogram else histogram[str(k)] for k in keys], color="#1F5FBF")
    ax.set_xlabel("segments used")
    ax.set_ylabel("puzzles")
    ax.set_xticks(keys)
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["render_sudoku", "render_maze", "render_arc", "render_grid", "trace_frames", "save_trace", "hstack",
           "add_caption", "plot_scaling_curve", "plot_steps_histogram", "ARC_COLORS"]
