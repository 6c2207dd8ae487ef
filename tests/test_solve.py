"""hrm-solve: early exit, puzzle parsing and its errors, ARC inverse transforms, the command line over the
puzzle-solving pipeline (bad input: one line, exit 2; the same messages as the pipeline)."""

import json

import numpy as np
import pytest
import torch

from modeling_hrm.solve import PuzzleError, main, parse_arc_task, solve_grid, sudoku_is_valid

SUDOKU = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SUDOKU_SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"


def tiny_model(seq_len=81, vocab=11, halt_max_steps=4, seed=0):
    """A random HRM small enough for tests (hidden 32, 1+1 layers)."""
    from modeling_hrm import HRMConfig, HRMForPuzzleSolving

    torch.manual_seed(seed)
    cfg = HRMConfig(vocab_size=vocab, seq_len=seq_len, hidden_size=32, num_heads=2, H_layers=1, L_layers=1,
                    H_cycles=1, L_cycles=2, puzzle_emb_ndim=32, halt_max_steps=halt_max_steps)
    return HRMForPuzzleSolving(cfg).eval()


def spread_halting(model, x):
    """Random Q head whose halt bias is centred so rows halt at different steps."""
    with torch.no_grad():
        model.q_head.weight.normal_(0.0, 0.5)
        model.q_head.bias.zero_()
        out = model(x)
        diff = out.q_halt_logits - out.q_continue_logits
        model.q_head.bias[0] -= float(diff.median()) + 1e-3
    return model


@pytest.fixture(scope="module")
def sudoku_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("sudoku_model")
    tiny_model().save_pretrained(path)
    return str(path)


# ------------------------------------------------------------------------------------------------ early exit
def test_early_exit_matches_full_run_at_each_rows_halting_step():
    model = tiny_model(seed=3)
    x = torch.randint(1, 11, (32, 81))
    spread_halting(model, x)
    early = solve_grid(model, x, max_steps=6, early_exit=True)
    full = solve_grid(model, x, max_steps=6, early_exit=False, return_trace=True)
    steps = early.steps
    assert len(set(steps.tolist())) >= 2, "rows should halt at different steps"
    assert (full.steps == 6).all() and full.trace.shape == (6, 32, 81)
    for row in range(32):
        np.testing.assert_array_equal(early.predictions[row], full.trace[steps[row] - 1, row])
    # Halting is the Q head's decision: every row that stopped before the budget had q_halt > q_continue.
    stopped = steps < 6
    assert (early.q_halt_logits[stopped] > early.q_continue_logits[stopped]).all()


def test_early_exit_rows_leave_the_batch():
    """Rows that halted cost nothing more: count the rows the H module processes."""
    model = tiny_model(seed=4)
    x = torch.randint(1, 11, (16, 81))
    spread_halting(model, x)
    seen = []
    hook = model.H_level.register_forward_hook(lambda mod, inp, out: seen.append(out.shape[0]))
    try:
        res = solve_grid(model, x, max_steps=5, early_exit=True)
        early_rows = sum(seen)
        seen.clear()
        solve_grid(model, x, max_steps=5, early_exit=False)
        full_rows = sum(seen)
    finally:
        hook.remove()
    # H runs once per segment per row (H_cycles=1): work is proportional to the steps actually used.
    assert early_rows == int(res.steps.sum())
    assert full_rows == 16 * 5 and early_rows < full_rows


def test_q_head_bias_controls_halting():
    model = tiny_model()
    x = torch.randint(1, 11, (4, 81))
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor([5.0, -5.0]))  # halt immediately
    assert (solve_grid(model, x, max_steps=8).steps == 1).all()
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor([-5.0, 5.0]))  # never halt: run to the budget
    assert (solve_grid(model, x, max_steps=8).steps == 8).all()


# ------------------------------------------------------------------------------------------- sudoku helpers
def test_sudoku_validity_check():
    solution = np.array([int(c) for c in SUDOKU_SOLUTION]).reshape(9, 9)
    puzzle = np.array([0 if c == "." else int(c) for c in SUDOKU]).reshape(9, 9)
    assert sudoku_is_valid(solution, puzzle)
    broken = solution.copy()
    broken[[0, 1]] = broken[[1, 0]]  # rows swapped: still a Latin square, but clues change and boxes break
    assert not sudoku_is_valid(broken, puzzle)
    other_clues = puzzle.copy()
    other_clues[0, 2] = 9 if solution[0, 2] != 9 else 8
    assert not sudoku_is_valid(solution, other_clues)


# ------------------------------------------------------------------------------------------------ ARC parsing
def test_arc_task_parse_errors():
    good = {"train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [{"input": [[0, 3], [4, 5]]}]}
    parsed = parse_arc_task(json.dumps(good))
    assert parsed["test"][0][0].shape == (2, 2) and parsed["test"][0][1] is None
    cases = [
        ({"train": [], "test": [{"input": [[1, 2], [3]]}]}, "ragged"),
        ({"train": [], "test": [{"input": [[1, 12]]}]}, "colour out of range"),
        ({"train": [], "test": [{"input": [[1] * 31]}]}, "larger than 30"),
        ({"train": [{"input": [[1]]}], "test": [{"input": [[1]]}]}, "no \"output\""),
        ({"train": []}, "non-empty \"test\""),
        ({"train": [], "test": [{"input": []}]}, "non-empty list"),
    ]
    for task, message in cases:
        with pytest.raises(PuzzleError, match=message):
            parse_arc_task(task)
    with pytest.raises(PuzzleError, match="not valid JSON"):
        parse_arc_task("{not json")


# -------------------------------------------------------------- parsing via formats (data engineer's module)
def test_sudoku_parse_errors_are_value_errors():
    formats = pytest.importorskip("dataset_scripts.formats")
    grid = np.asarray(formats.parse_sudoku(SUDOKU))
    assert grid.shape == (9, 9) and grid[0, 0] == 5 and grid[0, 2] == 0
    assert np.asarray(formats.parse_sudoku("1" + "." * 15)).shape == (4, 4)
    for bad in (SUDOKU[:-1], "x" + SUDOKU[1:], "55" + SUDOKU[2:]):  # length, symbol, clue conflict
        with pytest.raises(ValueError):
            formats.parse_sudoku(bad)


def test_arc_inverse_transform_every_version():
    """Every dihedral × colour-permutation version of a grid maps back exactly (through the token encoding)."""
    formats = pytest.importorskip("dataset_scripts.formats")
    from training.evaluation import invert_arc_version

    rng = np.random.default_rng(0)
    grid = rng.integers(0, 10, (3, 5))  # non-square, so transposing versions change the shape
    for k in range(8):
        for trial in range(4):
            perm = np.concatenate([[0], rng.permutation(np.arange(1, 10))]) if trial else np.arange(10)
            version = formats.dihedral(perm[grid], k)
            tokens = np.asarray(formats.encode_arc_grid(version)).reshape(-1)
            np.testing.assert_array_equal(invert_arc_version(tokens, k, perm), grid, err_msg=f"dihedral {k}")
    # An empty prediction (no grid at all) decodes to an empty grid instead of raising.
    assert invert_arc_version(np.zeros(900, dtype=np.uint8), 0, np.arange(10)).size == 0


# ------------------------------------------------------------------------------------------------ command line
def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("bad, reason", [(SUDOKU[:-1], "length"), ("x" + SUDOKU[1:], "symbol"),
                                         ("55" + SUDOKU[2:], "clue conflict")])
def test_cli_rejects_invalid_sudoku(capsys, sudoku_model_dir, bad, reason):
    pytest.importorskip("dataset_scripts.formats")
    code, out, err = run_cli(capsys, "--model", sudoku_model_dir, "--sudoku", bad)
    assert code == 2, reason
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("hrm-solve: error: invalid Sudoku"), err
    assert "Traceback" not in err and out == ""


def test_cli_rejects_size_mismatch_and_missing_model(capsys, sudoku_model_dir, tmp_path):
    pytest.importorskip("dataset_scripts.formats")
    code, _, err = run_cli(capsys, "--model", sudoku_model_dir, "--sudoku", "1" + "." * 15)
    assert code == 2 and "seq_len=16" in err and "seq_len=81" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "--model", str(tmp_path / "nope"), "--sudoku", SUDOKU)
    assert code == 2 and "model folder not found" in err and len(err.strip().splitlines()) == 1


def test_cli_rejects_ragged_arc(capsys, sudoku_model_dir, tmp_path):
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"train": [], "test": [{"input": [[1, 2], [3]]}]}))
    code, out, err = run_cli(capsys, "--model", sudoku_model_dir, "--arc", str(task))
    assert code == 2 and "ragged" in err and len(err.strip().splitlines()) == 1


def test_cli_solves_sudoku_and_writes_trace(capsys, sudoku_model_dir, tmp_path):
    pytest.importorskip("dataset_scripts.formats")
    from PIL import Image

    gif = tmp_path / "trace.gif"
    code, out, err = run_cli(capsys, "--model", sudoku_model_dir, "--sudoku", SUDOKU, "--max-steps", "3",
                             "--no-early-exit", "--trace", str(gif))
    assert code == 0, err
    assert "ACT steps: 3" in out and "Q-halt confidence" in out and "valid: no" in out
    assert len([l for l in out.splitlines() if "|" in l]) == 9  # the 9 grid rows
    with Image.open(gif) as im:
        assert im.n_frames == 3  # one frame per segment
    code, out, _ = run_cli(capsys, "--model", sudoku_model_dir, "--sudoku", SUDOKU, "--json", "--max-steps", "2",
                           "--no-early-exit")
    result = json.loads(out)
    assert code == 0 and result["steps"] == 2 and np.asarray(result["answer"]).shape == (9, 9)
    assert 0.0 < result["q_halt_confidence"] < 1.0 and result["valid"] is False and "trace" not in result


def test_cli_candidate_search(capsys, sudoku_model_dir):
    code, out, err = run_cli(capsys, "--model", sudoku_model_dir, "--sudoku", SUDOKU, "--num-candidates", "3",
                             "--max-steps", "2", "--json")
    result = json.loads(out)
    assert code == 0 and result["candidate"] in (0, 1, 2) and result["valid"] is False, err


def test_cli_maze_solves_and_rejects_bad_mazes(capsys, tmp_path):
    model_dir = tmp_path / "maze_model"
    tiny_model(seq_len=25, vocab=6, halt_max_steps=2).save_pretrained(model_dir)
    good = tmp_path / "maze.txt"
    good.write_text("#####\n#S  #\n# # #\n#G  #\n#####\n")
    code, out, err = run_cli(capsys, "--model", str(model_dir), "--maze", str(good))
    assert code == 0, err
    assert len(out.splitlines()[0]) == 5 and "ACT steps" in out and "valid: no" in out  # random model
    for text, problem in (("#####\n#S  #\n# x #\n#G  #\n#####\n", "unknown maze character"),
                          ("#####\n#S  #\n# # \n#G  #\n#####\n", "ragged"),
                          ("#####\n#S  #\n# S #\n#G  #\n#####\n", "'S' cells")):
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        code, out, err = run_cli(capsys, "--model", str(model_dir), "--maze", str(bad))
        assert code == 2 and problem in err and len(err.strip().splitlines()) == 1 and out == ""
    code, _, err = run_cli(capsys, "--model", str(model_dir), "--maze", str(tmp_path / "missing.txt"))
    assert code == 2 and "not found" in err


def test_format_steps_prints_one_line_per_segment_with_changes():
    from modeling_hrm.solve import format_steps

    first = np.array([[1, 2], [2, 2]])
    second = np.array([[1, 2], [2, 1]])
    lines = format_steps("sudoku", [first, second]).splitlines()
    assert lines == ["segment  1: 12 22", "segment  2: 12 21  (1 cells changed)"]
    assert format_steps("maze", ["#S\nG#\n", "#S\nGo\n"]).splitlines() == [
        "segment  1: #S|G#", "segment  2: #S|Go  (1 cells changed)"]


# Givens that do not clash, but no grid completes them (row 1 leaves only 9 for its last cell; column 9 has a 9).
UNSOLVABLE = "12345678." + "........9" + "." * 63


@pytest.mark.parametrize("args, message", [
    (["--sudoku", UNSOLVABLE], "invalid Sudoku: no valid solution exists"),
    (["--sudoku", SUDOKU, "--device", "cuda:0"] if not torch.cuda.is_available() else
     ["--sudoku", SUDOKU, "--device", "cuda:99"], "cuda"),
    (["--sudoku", SUDOKU, "--device", "gpu-please"], "unknown device 'gpu-please'"),
    (["--sudoku", SUDOKU, "--trace", "/no/such/folder/trace.gif"], "folder '/no/such/folder' does not exist"),
    (["--sudoku", SUDOKU, "--trace", "trace.txt"], "must end in .gif or .png"),
    (["--sudoku", SUDOKU, "--max-steps", "0"], "--max-steps must be >= 1"),
    (["--sudoku", SUDOKU, "--num-candidates", "0"], "--num-candidates must be >= 1"),
    (["--sudoku", SUDOKU, "--num-candidates", "2", "--show-steps"], "need --num-candidates 1"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, sudoku_model_dir, args, message):
    code, out, err = run_cli(capsys, "--model", sudoku_model_dir, *args)
    lines = [line for line in err.strip().splitlines() if line]
    assert code == 2 and len(lines) == 1 and message in lines[0] and out == "", err
    assert "Traceback" not in err


def test_cli_and_pipeline_give_the_same_message(capsys, sudoku_model_dir, tmp_path):
    """hrm-solve is a thin layer over the pipeline: bad input gets the same sentence through both."""
    from transformers import pipeline

    from modeling_hrm.pipeline_puzzle_solving import PuzzleError

    solver = pipeline("puzzle-solving", model=sudoku_model_dir, device="cpu")
    maze = tmp_path / "no_goal.txt"
    maze.write_text("#####\n#S  #\n#   #\n#####\n")
    task = tmp_path / "ragged.json"
    task.write_text(json.dumps({"train": [], "test": [{"input": [[1, 2], [3]]}]}))
    for flag, value, puzzle in (("--sudoku", UNSOLVABLE, UNSOLVABLE), ("--sudoku", "x" + SUDOKU[1:], "x" + SUDOKU[1:]),
                                ("--maze", str(maze), maze.read_text()), ("--arc", str(task), task.read_text())):
        with pytest.raises(PuzzleError) as info:
            solver(puzzle, kind=flag[2:])
        code, _, err = run_cli(capsys, "--model", sudoku_model_dir, flag, value)
        assert code == 2 and err.strip() == f"hrm-solve: error: {info.value}", (flag, err)


def test_cli_arc_prints_each_test_input(capsys, tmp_path):
    model_dir = tmp_path / "arc_model"
    tiny_model(seq_len=900, vocab=12, halt_max_steps=2).save_pretrained(model_dir)
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"train": [{"input": [[1]], "output": [[2]]}],
                                "test": [{"input": [[1, 2]], "output": [[2, 1]]}, {"input": [[3]]}]}))
    code, out, err = run_cli(capsys, "--model", str(model_dir), "--arc", str(task), "--max-steps", "1")
    assert code == 0, err
    assert out.count("test input") == 2 and out.count("ACT steps: 1") == 2 and "correct:" in out
