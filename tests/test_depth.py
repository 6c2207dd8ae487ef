"""The depth knob of the builders: Sudoku propagation rounds, maze shortest-path length, and the fast,
one-line failures for depths the generators cannot produce (never an endless search)."""

import json
import random

import numpy as np
import pytest

from dataset_scripts import build_maze_dataset, build_sudoku_dataset
from dataset_scripts.common import dataset_arrays, load_hrm_dataset
from dataset_scripts.formats import sudoku_box_shape
from dataset_scripts.sudoku import SudokuSolver, generate_puzzle


def rounds_by_sets(n: int, puzzle) -> int:
    """Independent re-statement of the depth: rounds of parallel naked + hidden singles, -1 when stuck."""
    br, bc = sudoku_box_shape(n)
    grid = [int(v) for v in puzzle]
    units = [[r * n + c for c in range(n)] for r in range(n)] + [[r * n + c for r in range(n)] for c in range(n)]
    units += [[(R * br + i) * n + C * bc + j for i in range(br) for j in range(bc)]
              for R in range(n // br) for C in range(n // bc)]
    peers = [set().union(*(u for u in units if i in u)) - {i} for i in range(n * n)]
    rounds = 0
    while 0 in grid:
        cand = [None if grid[i] else set(range(1, n + 1)) - {grid[p] for p in peers[i]} for i in range(n * n)]
        fills = {i: next(iter(c)) for i, c in enumerate(cand) if c is not None and len(c) == 1}
        for unit in units:
            for d in range(1, n + 1):
                places = [i for i in unit if cand[i] is not None and d in cand[i]]
                if len(places) == 1:
                    fills[places[0]] = d
        if not fills:
            return -1
        for i, d in fills.items():
            grid[i] = d
        rounds += 1
    return rounds


@pytest.mark.parametrize("n", [4, 6])
def test_propagation_rounds_match_an_independent_count(n):
    solver = SudokuSolver(n)
    rng = random.Random(n)
    seen = set()
    for _ in range(40):
        puzzle, solution, _ = generate_puzzle(n, rng, solver)
        rounds = solver.propagation_rounds(puzzle)
        assert rounds == rounds_by_sets(n, puzzle)
        seen.add(rounds)
        assert solver.propagation_rounds(solution) == 0
        one_blank = solution.copy()
        one_blank[5] = 0
        assert solver.propagation_rounds(one_blank) == 1
    assert len(seen) >= 2  # the knob really varies
    assert solver.propagation_rounds([0] * (n * n)) == -1  # no single anywhere: stuck


def test_sudoku_depth_knob_filters_and_card_states_distribution(tmp_path):
    out = tmp_path / "s4"
    meta = build_sudoku_dataset.main(["--size", "4", "--num-train", "30", "--num-test", "10",
                                      "--min-rounds", "2", "--max-rounds", "2", "--num-aug", "2",
                                      "--output-dir", str(out), "--quiet"])
    for split, puzzles in (("train", 30), ("test", 10)):
        ds, _ = load_hrm_dataset(str(out), split)
        rounds = np.asarray(ds["rounds"])
        assert (rounds == 2).all()
        solver = SudokuSolver(4)
        inputs = dataset_arrays(ds)["inputs"].astype(int) - 1  # tokens -> digits (blank 1 -> 0)
        assert all(solver.propagation_rounds(row) == 2 for row in inputs[:12])
        assert meta["rounds_histogram"][split] == {"2": puzzles}
    card = (out / "README.md").read_text()
    assert "## Depth distribution" in card and "| train | 30 |" in card
    assert json.loads((out / "hrm_dataset.json").read_text())["min_rounds"] == 2


@pytest.mark.parametrize("argv, message", [
    (["--min-rounds", "16"], "outside what a 4x4 puzzle can need (1..15 rounds)"),
    (["--min-rounds", "3", "--max-rounds", "2"], "--min-rounds 3 is above --max-rounds 2"),
])
def test_sudoku_impossible_depth_is_one_line_exit_2(tmp_path, capsys, argv, message):
    code = build_sudoku_dataset.run_cli(build_sudoku_dataset.main, ["--size", "4", "--output-dir",
                                                                    str(tmp_path / "x"), *argv])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_sudoku_depth_that_never_occurs_fails_fast_with_what_was_seen(tmp_path, monkeypatch):
    monkeypatch.setattr(build_sudoku_dataset, "RATE_WINDOW", 50)
    with pytest.raises(ValueError, match=r"found 0 of 5 .* propagation rounds seen: 1: \d+"):
        build_sudoku_dataset.main(["--size", "4", "--num-train", "5", "--num-test", "5", "--min-rounds", "9",
                                   "--output-dir", str(tmp_path / "x"), "--quiet"])


def test_maze_depth_knob_range_and_card(tmp_path):
    out = tmp_path / "m"
    meta = build_maze_dataset.main(["--size", "8", "--num-train", "20", "--num-test", "10", "--min-path-length", "7",
                                    "--max-path-length", "9", "--output-dir", str(out), "--quiet"])
    for split in ("train", "test"):
        ds, _ = load_hrm_dataset(str(out), split)
        lengths = np.asarray(ds["path_length"])
        assert lengths.min() >= 7 and lengths.max() <= 9
        assert sum(meta["path_length_histogram"][split].values()) == len(lengths)
        # the column is the real BFS depth: path cells marked 'o' + the final move into G
        labels = dataset_arrays(ds)["labels"]
        assert ((labels == 5).sum(1) + 1 == lengths).all()
    assert "## Depth distribution" in (out / "README.md").read_text()


def test_maze_impossible_depth_is_one_line_exit_2(tmp_path, capsys):
    code = build_maze_dataset.run_cli(build_maze_dataset.main, ["--size", "8", "--min-path-length", "40",
                                                                "--output-dir", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at most 35 moves" in err[0]


def test_maze_more_than_exist_at_a_depth_fails_fast(tmp_path, monkeypatch):
    # 6x6 mazes have 2 x 2 cells to carve between: only a handful of distinct mazes have a path of 5+ moves.
    monkeypatch.setattr(build_maze_dataset, "RATE_WINDOW", 200)
    with pytest.raises(ValueError, match=r"found \d+ of 100 distinct 6x6 mazes with a shortest path of >= 5 moves"):
        build_maze_dataset.main(["--size", "6", "--num-train", "100", "--num-test", "5", "--min-path-length", "5",
                                 "--output-dir", str(tmp_path / "x"), "--quiet"])


@pytest.mark.parametrize("halt_only, halt_step", [(True, 1), (False, 4)])
def test_segment_evaluation_halts_by_the_models_rule(halt_only, halt_step):
    """hrm-evaluate's early-exit view must use the model's own halting rule: with halt-only ACT a row halts when
    q_halt > 0 (its q_continue is never trained), not when q_halt > q_continue."""
    import torch

    from modeling_hrm import HRMConfig, HRMForPuzzleSolving
    from training.evaluation import run_segments

    torch.manual_seed(0)
    cfg = HRMConfig(vocab_size=6, seq_len=16, num_puzzle_identifiers=1, hidden_size=32, num_heads=2, H_layers=1,
                    L_layers=1, H_cycles=1, L_cycles=1, puzzle_emb_ndim=0, halt_max_steps=3,
                    no_ACT_continue=halt_only)
    model = HRMForPuzzleSolving(cfg)
    with torch.no_grad():  # q_halt = 1 > 0, but q_continue = 5 > q_halt, whatever the input
        model.q_head.weight.zero_()
        model.q_head.bias.copy_(torch.tensor([1.0, 5.0]))
    rng = np.random.default_rng(0)
    arrays = {"inputs": rng.integers(1, 6, (4, 16)).astype(np.uint8), "labels": rng.integers(1, 6, (4, 16)).astype(
        np.uint8), "puzzle_identifiers": np.zeros(4, np.int32)}
    seg = run_segments(model, arrays, max_steps=3)
    assert (seg["halt_step"] == halt_step).all()  # 4 = max_steps + 1: never halted
    assert (model.solve(torch.as_tensor(arrays["inputs"]).long(), max_steps=3).steps == min(halt_step, 3)).all()
