"""Formats: parsing, encoding, symmetries and canonical keys (dataset_scripts/formats.py)."""

import numpy as np
import pytest

from dataset_scripts import formats as F

SUDOKU_4 = "1.3...1.3......2"


def test_parse_sudoku_flat_and_pretty():
    g = F.parse_sudoku(SUDOKU_4)
    assert g.shape == (4, 4) and g[0, 0] == 1 and g[0, 1] == 0 and g[3, 3] == 2
    pretty = F.format_sudoku(g)
    assert np.array_equal(F.parse_sudoku(pretty), g)


@pytest.mark.parametrize("text,msg", [
    ("1.3...1.3.....", "cells"),             # 14 cells
    ("1.3...1.3.....x2", "symbol"),          # unknown char
    ("1.3...1.3.....52", "out of range"),    # digit 5 in a 4x4
    ("1.1.............", "conflict"),         # same digit twice in row 1
])
def test_parse_sudoku_errors(text, msg):
    with pytest.raises(ValueError, match=msg):
        F.parse_sudoku(text)


def test_sudoku_encode_decode_roundtrip_and_tokens():
    g = F.parse_sudoku(SUDOKU_4)
    t = F.encode_sudoku(g)
    assert t.dtype == np.uint8 and t[1] == 1 and t[0] == 2  # blank -> 1, digit 1 -> 2
    assert np.array_equal(F.decode_sudoku(t), g)
    assert F.sudoku_token_names(9)[10] == "9" and len(F.sudoku_token_names(6)) == 8


def test_check_sudoku_solution_detects_clue_clash():
    sol = np.array([[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 1]])
    puz = sol.copy()
    puz[1:] = 0
    F.check_sudoku_solution(puz, sol)
    bad = puz.copy()
    bad[0, 0] = 2
    bad[0, 1] = 1
    with pytest.raises(ValueError, match="disagrees"):
        F.check_sudoku_solution(bad, sol)
    wrong = sol.copy()
    wrong[0, 0], wrong[0, 1] = 2, 1  # row still fine, but columns / box break
    with pytest.raises(ValueError, match="conflict"):
        F.check_sudoku_solution(np.zeros_like(sol), wrong)
    assert F.sudoku_batch_valid(puz.reshape(1, -1), sol.reshape(1, -1)).tolist() == [True]
    assert F.sudoku_batch_valid(puz.reshape(1, -1), wrong.reshape(1, -1)).tolist() == [False]


def test_parse_maze_and_errors():
    m = F.parse_maze("#####\n#S  #\n# #G#\n#####")
    assert m.shape == (4, 5) and m[1, 1] == F.MAZE_START and m[2, 3] == F.MAZE_GOAL and m[0, 0] == 1
    assert F.decode_maze(m) == "#####\n#S  #\n# #G#\n#####"
    with pytest.raises(ValueError, match="ragged"):
        F.parse_maze("####\n#S  #\n# #G#")
    with pytest.raises(ValueError, match="unknown maze character 'x'"):
        F.parse_maze("#####\n#Sx #\n# #G#\n#####")
    with pytest.raises(ValueError, match="'G'"):
        F.parse_maze("#####\n#S  #\n#####")


def test_check_maze_solution_requires_shortest_path():
    q = F.parse_maze("#####\n#S  #\n# # #\n#  G#\n#####")
    short = F.parse_maze("#####\n#Soo#\n# #o#\n#  G#\n#####")
    assert F.check_maze_solution(q, short) == 4
    q2 = F.parse_maze("#######\n#S    #\n# ### #\n#    G#\n#######")
    loop = F.parse_maze("#######\n#S    #\n# ### #\n#   G #\n#######")
    F.check_maze_solution(loop, F.parse_maze("#######\n#S    #\n#o### #\n#oooG #\n#######"))
    with pytest.raises(ValueError, match="shortest is 5"):  # the long way round (7 moves)
        F.check_maze_solution(loop, F.parse_maze("#######\n#Soooo#\n# ###o#\n#   Go#\n#######"))
    with pytest.raises(ValueError, match="chain"):
        F.check_maze_solution(q2, F.parse_maze("#######\n#So   #\n# ### #\n#    G#\n#######"))


def test_arc_encode_decode_with_eos_border_and_translation():
    g = np.array([[0, 1, 2], [3, 4, 9]])
    t = F.encode_arc_grid(g)
    c = t.reshape(30, 30)
    assert c[0, 0] == 2 and c[1, 2] == 11  # colour + 2
    assert (c[2, :3] == 1).all() and (c[:2, 3] == 1).all() and c[2, 3] == 0  # EOS row / column, corner PAD
    assert c[3:, :].sum() == 0
    assert np.array_equal(F.decode_arc_grid(t, strict=True), g)
    moved = F.encode_arc_grid(g, offset=(5, 7))
    assert F.arc_grid_location(moved) == (5, 7, 2, 3)
    full = np.full((30, 30), 3)
    assert np.array_equal(F.decode_arc_grid(F.encode_arc_grid(full)), full)  # no room for EOS: still decodes
    noisy = t.copy().reshape(30, 30)
    noisy[1, 2] = 1  # a ragged prediction: best top-left rectangle is 2x2
    assert F.decode_arc_grid(noisy).shape == (2, 2)
    with pytest.raises(ValueError, match="well-formed"):
        F.decode_arc_grid(noisy, strict=True)


@pytest.mark.parametrize("grid,msg", [
    ([[1, 2], [3]], "ragged"),
    ([[1, 10]], "colour"),
    ([[0] * 31], "larger than 30x30"),
    ([], "non-empty"),
    ([[1, "a"]], "non-integer"),
])
def test_validate_arc_grid_errors(grid, msg):
    with pytest.raises(ValueError, match=msg):
        F.validate_arc_grid(grid, "task abc")


def test_dihedral_and_colour_versions_invert_exactly():
    rng = np.random.default_rng(0)
    g = rng.integers(0, 10, size=(3, 5))
    images = set()
    for k in range(8):
        perm = np.concatenate([[0], rng.permutation(9) + 1])
        v = F.arc_transform(g, k, perm)
        assert np.array_equal(F.invert_arc_version(v, k, perm), g)
        assert np.array_equal(F.inverse_dihedral(F.dihedral(g, k), k), g)
        images.add(F.dihedral(g, k).tobytes() + bytes(F.dihedral(g, k).shape))
    assert len(images) == 8  # the 8 transforms are distinct on an asymmetric grid
    with pytest.raises(ValueError):
        F.dihedral(g, 8)
    with pytest.raises(ValueError, match="permutation"):
        F.apply_color_perm(g, [0, 1, 1, 3, 4, 5, 6, 7, 8, 9])


def test_relabel_first_appearance_is_canonical():
    x = np.array([[3, 0, 3, 5, 9], [7, 0, 7, 2, 1]])
    r = F.relabel_first_appearance(x, 9)
    assert r.tolist() == [[1, 0, 1, 2, 3], [1, 0, 1, 2, 3]]
    assert F.row_hashes(r)[0] == F.row_hashes(r)[1]
    assert F.row_hashes(x)[0] != F.row_hashes(x)[1]


@pytest.mark.parametrize("n,size", [(4, 128), (6, 3456), (9, 8)])
def test_sudoku_position_group(n, size):
    g = F.sudoku_position_group(n)
    assert g.shape == (size, n * n)
    assert (np.sort(g, axis=1) == np.arange(n * n)).all()
    assert len({row.tobytes() for row in g}) == size
