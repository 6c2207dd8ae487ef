"""Renderers: grids as real PNG images, traces with one frame per segment, evaluation plots."""

import numpy as np
import pytest
from PIL import Image

from modeling_hrm.render import (ARC_COLORS, plot_scaling_curve, plot_steps_histogram, render_arc, render_maze,
                                 render_sudoku, save_trace, trace_frames)


def test_render_sudoku_highlight_changes_pixels():
    grid = np.arange(81).reshape(9, 9) % 9 + 1
    plain = render_sudoku(grid, cell=20)
    assert plain.size == (9 * 20 + 8, 9 * 20 + 8)
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    lit = render_sudoku(grid, highlight=mask, cell=20)
    diff = np.asarray(plain).astype(int) - np.asarray(lit).astype(int)
    ys, xs = np.nonzero(np.abs(diff).sum(-1))
    # Only the highlighted cell (pixels 84..104 with a 4 px margin) changed.
    assert ys.min() >= 4 + 4 * 20 and ys.max() <= 4 + 5 * 20 and xs.min() >= 4 + 4 * 20 and xs.max() <= 4 + 5 * 20


def test_render_arc_uses_palette():
    img = render_arc(np.array([[0, 1], [2, 9]]), cell=10)
    assert img.size == (21, 21)
    px = np.asarray(img)
    assert tuple(px[5, 15]) == tuple(int(ARC_COLORS[1][i:i + 2], 16) for i in (1, 3, 5))
    assert tuple(px[15, 15]) == tuple(int(ARC_COLORS[9][i:i + 2], 16) for i in (1, 3, 5))
    with pytest.raises(ValueError, match="0..9"):
        render_arc(np.array([[10]]))


def test_render_maze_accepts_tokens_and_characters():
    chars = np.array([list("#S #"), list("#oG#")])
    a = render_maze(chars, cell=6)
    b = render_maze(np.array([[1, 3, 2, 1], [1, 5, 4, 1]]), cell=6)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and a.size == (25, 13)
    with pytest.raises(ValueError, match="unknown maze character"):
        render_maze(np.array([list("#x")]))


@pytest.mark.parametrize("kind, grids", [
    ("sudoku", [np.zeros((4, 4), int), np.eye(4, dtype=int) * 2, np.eye(4, dtype=int) * 2, np.ones((4, 4), int)]),
    ("arc", [np.zeros((2, 3), int), np.ones((3, 2), int), np.ones((3, 2), int)]),
    ("maze", [np.full((3, 3), 2), np.full((3, 3), 5)]),
])
def test_trace_gif_has_one_frame_per_segment(tmp_path, kind, grids):
    # Identical consecutive grids (a model that stopped changing its answer) must still be separate frames.
    frames = trace_frames(kind, grids)
    path = save_trace(frames, tmp_path / "trace.gif")
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == len(grids)
    strip = save_trace(frames, tmp_path / "trace.png")
    with Image.open(strip) as im:
        assert im.format == "PNG"
        assert im.width == sum(f.width for f in frames) + 8 * (len(frames) - 1)


def test_trace_highlights_only_changed_cells():
    a = np.zeros((4, 4), int)
    b = a.copy()
    b[1, 2] = 3
    first, second = trace_frames("sudoku", [a, b])
    # With a grid that did not change, the second frame's grid equals the first (caption aside).
    same = trace_frames("sudoku", [a, a])[1]
    grid_h = render_sudoku(a).height
    diff = np.abs(np.asarray(second).astype(int)[:grid_h] - np.asarray(same).astype(int)[:grid_h]).sum(-1)
    ys, xs = np.nonzero(diff)
    assert len(ys) and ys.min() >= 4 + 36 and ys.max() <= 4 + 2 * 36 and xs.min() >= 4 + 2 * 36


def test_save_trace_rejects_other_suffix(tmp_path):
    with pytest.raises(ValueError, match=".gif or .png"):
        save_trace(trace_frames("arc", [np.zeros((1, 1), int)]), tmp_path / "x.jpg")


def test_plots_are_png(tmp_path):
    p = plot_scaling_curve([1, 2, 4], {"full": [0.1, 0.5, 0.6]}, tmp_path / "c.png", trained_steps=2)
    h = plot_steps_histogram({1: 3, 4: 2}, tmp_path / "h.png")
    for path in (p, h):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.width > 100


def test_sudoku_overwritten_clue_is_drawn_red():
    puzzle = np.zeros((4, 4), int)
    puzzle[0, 0] = 1
    kept, changed = puzzle.copy(), puzzle.copy()
    changed[0, 0] = 2
    def ink_colours(grid):
        px = np.asarray(render_sudoku(grid, givens=puzzle, cell=40))[4 + 8:4 + 32, 4 + 8:4 + 32].reshape(-1, 3)
        return {tuple(int(v) for v in p) for p in px if tuple(p) != (255, 255, 255)}
    # Anti-aliased glyphs: check the darkest pixel's hue rather than exact colours.
    dark = lambda cols: min(cols, key=sum)
    assert dark(ink_colours(kept)) == (0, 0, 0)
    r, g, b = dark(ink_colours(changed))
    assert r > 150 and g < 100 and b < 100
