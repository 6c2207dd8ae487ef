"""The `puzzle-solving` pipeline: inputs as people write them, answers in the same form, batching, HRM and TRM,
bad input, and remote code where the package is not installed."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import pipeline

import modeling_hrm
from modeling_hrm import HRMConfig, HRMForPuzzleSolving, TRMConfig, TRMForPuzzleSolving
from modeling_hrm.pipeline_puzzle_solving import PuzzleError, PuzzleSolvingPipeline, is_batch

SUDOKU = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
SOLUTION = "534678912672195348198342567859761423426853791713924856961537284287419635345286179"
SUDOKU_4 = "1...\n..2.\n.3..\n...4\n"
MAZE = "#####\n#S  #\n# # #\n#  G#\n#####\n"
ARC_TASK = {"train": [{"input": [[1, 2]], "output": [[2, 1]]}],
            "test": [{"input": [[0, 3], [4, 5]], "output": [[3, 0], [5, 4]]}, {"input": [[7]]}]}
TINY = dict(hidden_size=16, num_heads=2, L_layers=1, H_cycles=1, L_cycles=1, puzzle_emb_ndim=16, halt_max_steps=3)


def tiny(model_type="hrm", vocab_size=11, seq_len=81, num_puzzle_identifiers=1, seed=0, **overrides):
    torch.manual_seed(seed)
    fields = dict(TINY, vocab_size=vocab_size, seq_len=seq_len, num_puzzle_identifiers=num_puzzle_identifiers)
    fields.update(overrides)
    if model_type == "hrm":
        return HRMForPuzzleSolving(HRMConfig(H_layers=1, **fields)).eval()
    return TRMForPuzzleSolving(TRMConfig(puzzle_emb_len=1, **fields)).eval()


def answer_with_bias(model, tokens):
    """Make a random model output `tokens` at every position (a large bias on the LM head): a model that is right."""
    with torch.no_grad():
        model.lm_head.weight.zero_()
        bias = torch.full((model.config.seq_len, model.config.vocab_size), -50.0)
        bias[torch.arange(model.config.seq_len), torch.as_tensor(tokens)] = 50.0
        handle = model.lm_head.register_forward_hook(
            lambda mod, inp, out: out + bias[-out.shape[1]:].to(out.dtype))
    return handle


@pytest.fixture(scope="module")
def sudoku_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("sudoku_model")
    tiny().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def solver(sudoku_dir):
    return pipeline("puzzle-solving", model=str(sudoku_dir), device="cpu")


# ------------------------------------------------------------------------------------------------ Sudoku
def test_folder_carries_the_pipeline_and_the_registry_serves_it(sudoku_dir, solver):
    config = json.loads((sudoku_dir / "config.json").read_text())
    assert config["custom_pipelines"]["puzzle-solving"]["impl"] == "pipeline_puzzle_solving.PuzzleSolvingPipeline"
    for name in ("pipeline_puzzle_solving.py", "formats.py", "arc.py", "sudoku.py"):
        assert (sudoku_dir / name).is_file(), name
    assert "dataset_scripts" not in (sudoku_dir / "arc.py").read_text()  # flat folder: relative imports only
    # The package's own pipeline serves the task, without trust_remote_code.
    assert type(solver) is PuzzleSolvingPipeline


def test_sudoku_string_in_string_out(solver):
    result = solver(SUDOKU)
    assert set(result) == {"kind", "answer", "valid", "steps", "q_halt_confidence"}
    assert result["kind"] == "sudoku" and isinstance(result["answer"], str) and len(result["answer"]) == 81
    assert result["valid"] is False  # a random model
    assert 1 <= result["steps"] <= 3 and 0.0 < result["q_halt_confidence"] < 1.0


def test_a_right_answer_is_valid_in_every_form(sudoku_dir):
    model = tiny()
    handle = answer_with_bias(model, [int(c) + 1 for c in SOLUTION])
    solve = pipeline("puzzle-solving", model=model, device="cpu")
    try:
        flat = solve(SUDOKU)
        assert flat["answer"] == SOLUTION and flat["valid"] is True
        pretty = "\n".join(" ".join(SUDOKU[r * 9:(r + 1) * 9]) for r in range(9))
        assert solve(pretty)["answer"] == "\n".join(" ".join(SOLUTION[r * 9:(r + 1) * 9]) for r in range(9))
        grid = [[0 if c == "." else int(c) for c in SUDOKU[r * 9:(r + 1) * 9]] for r in range(9)]
        as_grid = solve(grid)
        assert as_grid["answer"] == [[int(c) for c in SOLUTION[r * 9:(r + 1) * 9]] for r in range(9)]
        as_array = solve(np.array(grid))
        assert isinstance(as_array["answer"], np.ndarray) and as_array["valid"]
    finally:
        handle.remove()


def test_a_list_is_one_batch_and_matches_single_calls(solver):
    puzzles = [SUDOKU, SUDOKU.replace("5", ".", 1), SUDOKU.replace("79", "7.")]
    calls, solve = [], solver.model.solve
    solver.model.solve = lambda input_ids, **kwargs: calls.append(len(input_ids)) or solve(input_ids, **kwargs)
    try:
        batched = solver(puzzles, max_steps=2, early_exit=False)
    finally:
        del solver.model.solve
    assert calls == [3]  # one solve for the whole list, not one per puzzle
    assert [r["answer"] for r in batched] == [solver(p, max_steps=2, early_exit=False)["answer"] for p in puzzles]
    assert all(r["steps"] == 2 for r in batched)
    small_batches = solver(puzzles, batch_size=2, max_steps=2, early_exit=False)
    assert [r["answer"] for r in small_batches] == [r["answer"] for r in batched]
    assert solver([]) == []


def test_trace_has_one_answer_per_segment(solver):
    result = solver(SUDOKU, max_steps=3, early_exit=False, return_trace=True)
    assert len(result["trace"]) == 3 and result["trace"][-1] == result["answer"]
    assert all(isinstance(t, str) and len(t) == 81 for t in result["trace"])
    results = solver([SUDOKU, SUDOKU], max_steps=2, early_exit=False, return_trace=True)
    assert all(len(r["trace"]) == 2 for r in results)


def test_batch_detection():
    grid = [[1, 0], [0, 2]]
    assert not is_batch(grid) and is_batch([grid, grid]) and is_batch([SUDOKU]) and not is_batch(SUDOKU)
    assert not is_batch(np.zeros((4, 4))) and is_batch(np.zeros((2, 4, 4))) and is_batch([ARC_TASK])


@pytest.mark.parametrize("puzzle, message", [
    (SUDOKU[:-1], "invalid Sudoku: Sudoku has 80 cells"),
    ("x" + SUDOKU[1:], "unknown Sudoku symbol 'x'"),
    ("55" + SUDOKU[2:], "conflict: digit 5 twice in row 1"),
    # Givens that do not clash, but no grid completes them: row 1 leaves only 9 for its last cell, column 9 has a 9.
    ("12345678." + "........9" + "." * 63, "no valid solution exists"),
    ([[1, 2], [3, 4]], "unsupported Sudoku size 2"),
    (SUDOKU_4, r"a 4×4 Sudoku needs a model with seq_len=16, vocab_size=6"),
])
def test_bad_sudoku_gets_one_line(solver, puzzle, message):
    with pytest.raises(PuzzleError, match=message) as info:
        solver(puzzle)
    assert "\n" not in str(info.value)


def test_error_in_a_list_names_the_puzzle(solver):
    with pytest.raises(PuzzleError, match=r"^puzzle 1: invalid Sudoku: unknown Sudoku symbol"):
        solver([SUDOKU, "x" + SUDOKU[1:]])


def test_bad_options(solver):
    with pytest.raises(ValueError, match="max_steps must be a positive integer"):
        solver(SUDOKU, max_steps=0)
    with pytest.raises(ValueError, match="unknown puzzle kind 'chess'"):
        solver(SUDOKU, kind="chess")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        solver([SUDOKU], batch_size=0)


def test_candidate_search_answers_with_a_valid_candidate_when_one_exists():
    """With num_candidates, a checkable puzzle is answered by the most confident valid candidate: here only the
    unperturbed run (candidate 0) is right, and its Q head is the least confident."""
    model = tiny()
    right = [int(c) + 1 for c in SOLUTION]
    solve, calls = model.solve, []

    def rigged(input_ids, num_candidates=1, **kwargs):
        res = solve(input_ids, num_candidates=num_candidates, **kwargs)
        calls.append(num_candidates)
        if num_candidates > 1:
            res.candidate_predictions[0] = torch.as_tensor(right)  # candidate 0 of every row: the solution
            res.candidate_q_halt_logits[0] = -5.0
        return res

    model.solve = rigged
    solver = pipeline("puzzle-solving", model=model, device="cpu")
    result = solver(SUDOKU, num_candidates=3, max_steps=2)
    assert calls == [3] and result["valid"] is True and result["candidate"] == 0 and result["answer"] == SOLUTION
    assert result["q_halt_confidence"] == pytest.approx(torch.sigmoid(torch.tensor(-5.0)).item())
    plain = solver([SUDOKU, SUDOKU], max_steps=2)  # one candidate: no "candidate" key, the model's answer
    assert calls[-1] == 1 and all("candidate" not in r for r in plain)
    with pytest.raises(ValueError, match="return_trace needs num_candidates=1"):
        solver(SUDOKU, num_candidates=2, return_trace=True)


def test_candidate_search_batched_and_for_arc():
    model = tiny(vocab_size=12, seq_len=900, halt_max_steps=2)
    solver = pipeline("puzzle-solving", model=model, device="cpu")
    calls, solve = [], model.solve
    model.solve = lambda input_ids, **kwargs: calls.append((len(input_ids), kwargs.get("num_candidates"))) or solve(
        input_ids, **kwargs)
    batched = solver([ARC_TASK, ARC_TASK], num_candidates=2, augment=False)
    # One solve: 2 tasks x 2 test inputs x 1 version; every candidate votes (the noise of the perturbed candidates
    # is drawn per batch, so the answers are not compared across batchings).
    assert calls == [(4, 2)]
    assert all(len(r["answer"]) == 2 and len(r["attempts"][0]) >= 1 and len(r["steps"]) == 2 for r in batched)


# ------------------------------------------------------------------------------------------------ maze, ARC, TRM
def test_maze_text_in_text_out_for_trm(tmp_path):
    model = tiny("trm", vocab_size=6, seq_len=25)
    solve = pipeline("puzzle-solving", model=model, device="cpu")
    result = solve(MAZE)
    assert result["kind"] == "maze" and result["answer"].endswith("\n") and len(result["answer"].splitlines()) == 5
    assert result["valid"] is False
    path = "#####\n#Soo#\n# #o#\n#  G#\n#####\n"  # the shortest path, as the model's answer
    tokens = ["\0# SGo".index(c) for c in path.replace("\n", "")]
    handle = answer_with_bias(model, tokens)
    try:
        right = solve(MAZE)
    finally:
        handle.remove()
    assert right["answer"] == path and right["valid"] is True
    for bad, message in (("#####\n#S  #\n# # #\n#   #\n#####\n", "maze has 0 'G' cells"),
                         ("#####\n#S  #\n#####\n#  G#\n#####\n", "no path from S to G"),
                         ("#####\n#S  #\n# x #\n#  G#\n#####\n", "unknown maze character 'x'")):
        with pytest.raises(PuzzleError, match=message):
            solve(bad)


def test_arc_task_votes_and_answers_grids(tmp_path):
    model = tiny(vocab_size=12, seq_len=900, num_puzzle_identifiers=2, halt_max_steps=2)
    solve = pipeline("puzzle-solving", model=model, device="cpu")
    result = solve(json.dumps(ARC_TASK))
    assert result["kind"] == "arc" and len(result["answer"]) == 2 and len(result["attempts"]) == 2
    assert result["correct"][1] is None and isinstance(result["correct"][0], bool)
    assert all(isinstance(a, list) for a in result["answer"]) and len(result["steps"]) == 2
    task_file = tmp_path / "task.json"
    task_file.write_text(json.dumps(ARC_TASK))
    from_file = solve([str(task_file), task_file], max_steps=1, early_exit=False)
    assert from_file[0]["answer"] == from_file[1]["answer"] == solve(ARC_TASK, max_steps=1, early_exit=False)["answer"]
    bare = solve([[0, 3], [4, 5]])  # a bare grid to an ARC model: one test input
    assert isinstance(bare["answer"], list) and isinstance(bare["steps"], int)
    with pytest.raises(PuzzleError, match="test pair 0 input: ragged grid"):
        solve({"train": [], "test": [{"input": [[1, 2], [3]]}]})
    with pytest.raises(PuzzleError, match="puzzle id 1 names one trained version"):
        solve(ARC_TASK, puzzle_id=1)
    with pytest.raises(PuzzleError, match="an ARC grid needs a model with seq_len=900"):
        pipeline("puzzle-solving", model=tiny(), device="cpu")(ARC_TASK)


# ------------------------------------------------------------------------------------------------ remote code
def test_remote_code_without_the_package(tmp_path):
    """A saved folder brings the pipeline along: the same answers where neither modeling_hrm nor dataset_scripts
    can be imported, for HRM and TRM (one subprocess for both: starting Python and transformers is the cost)."""
    expected = {}
    for model_type in ("hrm", "trm"):
        model = tiny(model_type)
        model.save_pretrained(tmp_path / model_type)
        solve = pipeline("puzzle-solving", model=model, device="cpu")
        expected[model_type] = [r["answer"] for r in solve([SUDOKU, SUDOKU], max_steps=2, early_exit=False)]
    script = textwrap.dedent(f"""
        import json, sys
        for name in ("modeling_hrm", "dataset_scripts", "training"):
            sys.modules[name] = None  # the package must not be importable here
        import torch
        torch.set_num_threads(1)
        from transformers import pipeline
        out = {{}}
        for model_type in ("hrm", "trm"):
            solve = pipeline("puzzle-solving", model={str(tmp_path)!r} + "/" + model_type, trust_remote_code=True,
                             device="cpu")
            assert type(solve).__module__.startswith("transformers_modules"), type(solve).__module__
            out[model_type] = [r["answer"] for r in solve([{SUDOKU!r}, {SUDOKU!r}], max_steps=2, early_exit=False)]
        try:
            solve("12345678." + "........9" + "." * 63)
        except ValueError as err:
            out["error"] = str(err)
        print("RESULT" + json.dumps(out))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=180)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, run.stderr[-3000:]
    remote = json.loads(lines[0][len("RESULT"):])
    assert remote["hrm"] == expected["hrm"] and remote["trm"] == expected["trm"]
    assert remote["error"].startswith("invalid Sudoku: no valid solution exists")
