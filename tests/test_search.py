"""Test-time search (modeling_hrm/search.py): selectors on hand-made candidates, symmetric copies mapped back
exactly on real puzzles, seeding, the default path, compute accounting, grids, and the pipeline's `search=`."""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dataset_scripts.build_maze_dataset import generate_maze
from dataset_scripts.formats import encode_arc_grid, encode_sudoku, sudoku_batch_valid
from dataset_scripts.sudoku import generate_puzzle
from modeling_hrm import HRMConfig, HRMForPuzzleSolving, TRMConfig, TRMForPuzzleSolving
from modeling_hrm.flops import inference_flops, segment_flops
from modeling_hrm.search import (SearchError, SearchSetting, Symmetries, evaluate_grid, format_table, grid_settings,
                                 parse_grid, parse_setting, plot_accuracy_vs_flops, search, select, task_symmetries,
                                 validity)


def tiny(model_type="trm", vocab_size=6, seq_len=16, seed=0, **overrides):
    """A small random model whose Q head is not constant (a fresh Q head has zero weights: every q ties)."""
    torch.manual_seed(seed)
    fields = dict(vocab_size=vocab_size, seq_len=seq_len, hidden_size=32, num_heads=2, L_layers=1, H_cycles=2,
                  L_cycles=2, num_puzzle_identifiers=1, puzzle_emb_ndim=32, halt_max_steps=3)
    fields.update(overrides)
    model = (HRMForPuzzleSolving(HRMConfig(H_layers=1, **fields)) if model_type == "hrm" else
             TRMForPuzzleSolving(TRMConfig(puzzle_emb_len=1, **fields))).eval()
    with torch.no_grad():
        model.q_head.weight.normal_(0, 0.3)
        model.q_head.bias.fill_(0.0)
    return model


def sudoku_set(n, count, seed=0):
    """`count` real n×n puzzles and their solutions, as token rows."""
    rng = random.Random(seed)
    puzzles, solutions = zip(*(generate_puzzle(n, rng)[:2] for _ in range(count)))
    return (np.stack([encode_sudoku(p) for p in puzzles]).astype(np.int64),
            np.stack([encode_sudoku(s) for s in solutions]).astype(np.int64))


def echo(model):
    """Make `model` answer every row with its own input tokens (whatever frame the row is in)."""
    seen = {}
    embed, heads = model.input_embeddings, model.heads

    def input_embeddings(input_ids, *args, **kwargs):
        seen["x"] = input_ids
        return embed(input_ids, *args, **kwargs)

    def echo_heads(z_H):
        _, q_halt, q_continue = heads(z_H)
        return 100.0 * F.one_hot(seen["x"], model.config.vocab_size).float(), q_halt, q_continue

    model.input_embeddings, model.heads = input_embeddings, echo_heads
    return model


# ------------------------------------------------------------------------------------------------ selectors
def test_q_selector_takes_the_largest_q_halt_ties_to_the_lower_index():
    q = np.array([[0.1, 2.0, 0.5], [0.9, -1.0, 0.5], [0.3, 1.9, 0.2]])
    assert select("q", np.zeros((3, 3, 4)), q).tolist() == [1, 0, 0]


def test_vote_selector_takes_the_majority_answer_and_breaks_ties_by_confidence():
    a, b, c = [2, 3, 4, 5], [3, 2, 5, 4], [4, 5, 2, 3]
    # puzzle 0: b given by candidates 1 and 3 (the least confident ones) beats a and c
    # puzzle 1: a (candidates 0, 2) and c (1, 3) tie on votes; c's voters are more confident
    # puzzle 2: all differ: the most confident single answer (candidate 2)
    preds = np.array([[a, a, c], [b, c, a], [c, a, b], [b, c, [5, 5, 5, 5]]])
    q = np.array([[3.0, -1.0, 0.0], [-2.0, 2.0, 0.1], [2.5, -1.0, 0.9], [-3.0, 2.0, -0.5]])
    assert select("vote", preds, q).tolist() == [1, 1, 2]


def test_residual_selector_takes_the_trajectory_closest_to_a_fixed_point():
    residual = np.array([[0.3, 0.01], [0.02, 0.5], [0.2, 0.01]])
    assert select("residual", np.zeros((3, 2, 4)), np.zeros((3, 2)), residual=residual).tolist() == [1, 0]


def test_valid_selector_prefers_a_valid_answer_over_a_confident_invalid_one():
    puzzles, solutions = sudoku_set(4, 2)
    wrong = solutions.copy()
    wrong[:, [0, 1]] = wrong[:, [1, 0]]  # two cells swapped: a row keeps its digits, a column does not
    preds = np.stack([wrong, solutions, wrong])  # (K=3, N=2, 16): only candidate 1 is valid
    preds[1, 1] = wrong[1]  # puzzle 1: no valid candidate
    valid = validity("sudoku", puzzles, preds, (4, 4))
    assert valid.tolist() == [[False, False], [True, False], [False, False]]
    q = np.array([[2.0, 0.0], [-1.0, 0.5], [0.5, 3.0]])
    assert select("valid", preds, q, valid=valid).tolist() == [1, 2]  # puzzle 1 falls back to the Q pick


def test_maze_validity_is_the_shortest_path_check():
    question, answer, _ = generate_maze(8, 4, 0.0, False, random.Random(3))
    detour = answer.copy()
    path = np.argwhere(answer == 5)
    detour[tuple(path[0])] = 2  # a gap in the path
    answers = np.stack([answer.reshape(-1), question.reshape(-1), detour.reshape(-1)])[:, None]
    assert validity("maze", question.reshape(1, -1), answers, (8, 8))[:, 0].tolist() == [True, False, False]
    assert validity("arc", np.zeros((1, 900)), np.zeros((2, 1, 900), np.uint8), (30, 30)) is None


# ------------------------------------------------------------------------------------------------ symmetries
@pytest.mark.parametrize("n", [4, 6, 9])
def test_sudoku_symmetries_keep_puzzles_valid_and_map_back_exactly(n):
    puzzles, solutions = sudoku_set(n, 4, seed=n)
    group = Symmetries("sudoku", (n, n), task_symmetries("sudoku", (n, n), None), seed=5)
    index, candidates = np.repeat(np.arange(4), 6), np.tile(np.arange(6), 4)
    moved_puzzles = group.apply(puzzles[index], index, candidates)
    moved_solutions = group.apply(solutions[index], index, candidates)
    assert (moved_puzzles[candidates == 0] == puzzles).all()
    assert not (moved_puzzles[candidates > 0] == puzzles[index[candidates > 0]]).all(-1).any()  # really moved
    # a transformed solution solves the transformed puzzle: the transforms preserve validity
    assert sudoku_batch_valid(moved_puzzles - 1, moved_solutions - 1).all()
    assert (group.invert(moved_solutions, index, candidates) == solutions[index]).all()
    assert (group.invert(moved_puzzles, index, candidates) == puzzles[index]).all()


def test_sudoku_symmetry_subsets_move_only_what_they_name():
    puzzles, _ = sudoku_set(6, 3)
    index, candidates = np.arange(3), np.ones(3, dtype=int)
    digits_only = Symmetries("sudoku", (6, 6), ("digits",), seed=1).apply(puzzles, index, candidates)
    assert ((digits_only == 1) == (puzzles == 1)).all()  # blanks stay where they were
    rows_only = Symmetries("sudoku", (6, 6), ("rows",), seed=1).apply(puzzles, index, candidates)
    for before, after in zip(puzzles.reshape(3, 6, 6), rows_only.reshape(3, 6, 6)):
        assert sorted(map(tuple, before)) == sorted(map(tuple, after))  # the same rows, reordered


def test_maze_and_arc_symmetries_map_back_exactly():
    question, answer, _ = generate_maze(8, 4, 0.0, False, random.Random(1))
    group = Symmetries("maze", (8, 8), ("dihedral",), seed=0)
    rows, index, candidates = np.repeat(answer.reshape(1, -1), 8, 0), np.zeros(8, int), np.arange(8)
    moved = group.apply(rows, index, candidates)
    assert len({m.tobytes() for m in moved}) == 8
    questions = group.apply(np.repeat(question.reshape(1, -1), 8, 0), index, candidates)
    assert validity("maze", questions, moved[None], (8, 8)).all()  # each moved answer solves its moved maze
    assert (group.invert(moved, index, candidates) == rows).all()
    grid = np.array([[1, 2, 3], [4, 0, 5]])
    arc = Symmetries("arc", (30, 30), ("dihedral", "colors"), seed=2)
    tokens = np.repeat(encode_arc_grid(grid)[None].astype(np.int64), 5, 0)
    moved = arc.apply(tokens, np.zeros(5, int), np.arange(5))
    assert len({m.tobytes() for m in moved}) == 5
    assert (arc.invert(moved, np.zeros(5, int), np.arange(5)) == tokens).all()


@pytest.mark.parametrize("task,model_kwargs,make", [
    ("sudoku", dict(vocab_size=8, seq_len=36), lambda: sudoku_set(6, 5)[0]),
    ("maze", dict(vocab_size=6, seq_len=64),
     lambda: np.stack([generate_maze(8, 3, 0.0, False, random.Random(s))[0].reshape(-1) for s in range(5)])),
])
def test_search_maps_every_symmetric_answer_back_to_the_puzzles_frame(task, model_kwargs, make):
    """An echo model answers each copy with the copy itself: mapped back, every candidate is the puzzle."""
    puzzles = make()
    model = echo(tiny(**model_kwargs))
    res = search(model, torch.as_tensor(puzzles), task=task, breadth=6, kind="symmetry+noise", early_exit=False)
    assert (res.candidate_predictions == puzzles[None]).all()


# ------------------------------------------------------------------------------------------------ seeding
@pytest.mark.parametrize("kind", ["noise", "restart", "step_noise", "symmetry", "sample", "symmetry+sample"])
def test_the_same_seed_gives_the_same_answers(kind):
    model = tiny("hrm")
    puzzles, _ = sudoku_set(4, 6)
    run = lambda seed, rows=1024: search(model, torch.as_tensor(puzzles), task="sudoku", breadth=5, kind=kind,  # noqa
                                         selector="vote", seed=seed, max_rows=rows, temperature=2.0)
    first, again, other = run(0), run(0), run(1)
    assert (first.candidate_predictions == again.candidate_predictions).all()
    assert (first.predictions == again.predictions).all()
    assert np.array_equal(first.q_halt_logits, again.q_halt_logits)
    assert not np.array_equal(first.candidate_predictions, other.candidate_predictions) or \
        not np.array_equal(first.q_halt_logits, other.q_halt_logits)
    if kind != "step_noise":  # per-candidate draws: a candidate does not depend on the chunk it runs in
        chunked = run(0, rows=4)
        assert (chunked.candidate_predictions == first.candidate_predictions).all()
        np.testing.assert_allclose(chunked.q_halt_logits, first.q_halt_logits, rtol=1e-5, atol=1e-5)


def test_a_puzzle_gets_the_same_candidates_wherever_it_sits_in_a_list():
    model = tiny()
    puzzles, _ = sudoku_set(4, 6)
    for kind in ("restart", "symmetry+sample"):
        whole = search(model, torch.as_tensor(puzzles), task="sudoku", breadth=4, kind=kind, seed=3)
        part = search(model, torch.as_tensor(puzzles[[5, 2]]), task="sudoku", breadth=4, kind=kind, seed=3)
        assert (part.candidate_predictions == whole.candidate_predictions[:, [5, 2]]).all()


# ------------------------------------------------------------------------------------------------ default path
@pytest.mark.parametrize("model_type", ["hrm", "trm"])
def test_the_plain_setting_is_solve_and_solve_candidates_are_noise_with_the_q_pick(model_type):
    model = tiny(model_type, halt_max_steps=4)
    puzzles, _ = sudoku_set(4, 8)
    x = torch.as_tensor(puzzles)
    plain, res = model.solve(x), search(model, x)
    assert np.array_equal(res.predictions, plain.predictions.numpy())
    assert np.array_equal(res.steps[0], plain.steps.numpy())
    assert np.array_equal(res.q_halt_logits[0], plain.q_halt_logits.numpy())
    cands = model.solve(x, num_candidates=4, candidate_noise=0.7, seed=9)
    res = search(model, x, breadth=4, kind="noise", noise=0.7, seed=9, selector="q")
    assert np.array_equal(res.candidate_predictions, cands.candidate_predictions.numpy())
    assert np.array_equal(res.chosen, cands.chosen_candidate.numpy())
    assert np.array_equal(res.predictions, cands.predictions.numpy())


# ------------------------------------------------------------------------------------------------ compute
def test_flops_count_the_segments_each_trajectory_ran_at_the_cycles_used():
    model = tiny(halt_max_steps=4)
    puzzles, _ = sudoku_set(4, 5)
    x = torch.as_tensor(puzzles)
    res = search(model, x, breadth=3, kind="noise", depth=6)
    assert res.flops_per_puzzle == inference_flops(model.config, res.steps.sum(0).mean())
    deep = search(model, x, depth=7, early_exit=False, h_cycles=4, l_cycles=3)
    assert (deep.steps == 7).all() and model.config.H_cycles == 2 and model.config.L_cycles == 2  # restored
    wider = TRMConfig(**{**model.config.to_dict(), "H_cycles": 4, "L_cycles": 3})
    assert deep.flops_per_puzzle == pytest.approx(7 * segment_flops(wider))
    # more cycles per segment is another computation, not a relabelled one
    assert not np.array_equal(deep.q_halt_logits, search(model, x, depth=7, early_exit=False).q_halt_logits)
    # samples of one trajectory cost one trajectory
    sampled = search(model, x, breadth=8, kind="sample", depth=4, early_exit=False)
    assert sampled.trajectories_per_puzzle == 1 and sampled.flops_per_puzzle == 4 * segment_flops(model.config)
    sampled.chosen = np.array([3, 7, 0, 1, 5])  # any sample's trajectory is the one that ran
    assert (sampled.chosen_steps() == sampled.steps[0]).all()


def test_the_one_pass_baseline_gets_the_same_breadth_and_selectors():
    baseline = tiny("hrm", H_cycles=1, L_cycles=1, halt_max_steps=1)
    puzzles, _ = sudoku_set(4, 4)
    for selector in ("q", "vote", "residual", "valid"):
        res = search(baseline, torch.as_tensor(puzzles), task="sudoku", breadth=6, kind="symmetry+sample",
                     selector=selector, temperature=1.5)
        assert res.steps.shape == (6, 4) and (res.steps == 1).all()
        assert res.flops_per_puzzle == 6 * segment_flops(baseline.config)


# ------------------------------------------------------------------------------------------------ settings and grids
def test_settings_and_grids_parse():
    assert parse_setting("depth=16 breadth=8 kind=symmetry+sample selector=vote temperature=0.5") == SearchSetting(
        depth=16, breadth=8, kind="symmetry+sample", selector="vote", temperature=0.5)
    grid = parse_grid(["depth=trained,16", "breadth=1,8", "breadth_kind=noise,restart", "selector=q,valid"])
    assert grid == {"depth": [None, 16], "breadth": [1, 8], "kind": ["noise", "restart"], "selector": ["q", "valid"]}
    settings, selectors = grid_settings(grid, task="sudoku")
    # breadth 1 is the same plain run whatever the kind: run once per depth
    assert len(settings) == 2 * (1 + 2) and selectors == ["q", "valid"]
    with pytest.raises(SearchError, match="several values"):
        parse_setting("depth=4,8")


def test_a_grid_reports_accuracy_and_compute_and_draws_the_plot(tmp_path):
    model = tiny(halt_max_steps=2)
    puzzles, solutions = sudoku_set(4, 6)
    result = evaluate_grid(model, puzzles, solutions, grid="depth=2,4 breadth=1,3 kind=noise,symmetry "
                           "selector=q,vote,residual,valid", task="sudoku")
    rows = result["rows"]
    assert len(rows) == 2 * (1 + 2) * 4
    assert result["reference"]["relative_flops"] == 1.0 and result["reference"]["depth"] is None
    for row in rows:
        assert 0.0 <= row["exact_accuracy"] <= row["oracle"] <= 1.0 and len(row["correct"]) == 6
        assert row["flops_per_puzzle"] > 0 and row["seconds"] > 0
        assert row["relative_flops"] == pytest.approx(row["flops_per_puzzle"] / result["reference"]["flops_per_puzzle"])
    table = format_table(result)
    data = [line for line in table.splitlines() if line.startswith(("| 2 ", "| 4 "))]
    assert len(data) == 2 * 2 * 4 + 2 and "valid (verifier)" in table  # breadth 1: one line, whatever the selector
    plot_accuracy_vs_flops({"tiny": result, "again": result}, tmp_path / "search.png")
    assert (tmp_path / "search.png").stat().st_size > 0


def test_a_big_setting_is_split_into_chunks_not_refused():
    model = tiny()
    puzzles, _ = sudoku_set(4, 3)
    small = search(model, torch.as_tensor(puzzles), breadth=9, kind="restart", memory_budget=200_000)
    big = search(model, torch.as_tensor(puzzles), breadth=9, kind="restart")
    assert (small.candidate_predictions == big.candidate_predictions).all()


# ------------------------------------------------------------------------------------------------ pipeline
def test_the_pipeline_takes_a_search_setting():
    from transformers import pipeline

    puzzles, solutions = sudoku_set(4, 3)
    model = tiny()
    solver = pipeline("puzzle-solving", model=model, device="cpu")
    text = ["".join(str(max(int(t) - 1, 0)) for t in row).replace("0", ".") for row in puzzles]
    setting = {"depth": 5, "breadth": 4, "kind": "symmetry", "selector": "vote", "seed": 2}
    results = solver(text, search=setting, batch_size=5)
    direct = search(model, torch.as_tensor(puzzles), task="sudoku", **setting)
    for result, answer, candidate in zip(results, direct.predictions, direct.chosen):
        assert result["answer"] == "".join(str(max(int(t) - 1, 0)) for t in answer).replace("0", ".")
        assert result["candidate"] == candidate
    one = solver(text[1], search="depth=5 breadth=4 kind=symmetry selector=vote seed=2")
    assert one["answer"] == results[1]["answer"]
    sampled = solver(text, search={"breadth": 6, "kind": "sample", "selector": "valid", "temperature": 3.0})
    direct = search(model, torch.as_tensor(puzzles), task="sudoku", breadth=6, kind="sample", selector="valid",
                    temperature=3.0)
    assert [r["candidate"] for r in sampled] == direct.chosen.tolist()
    assert [r["steps"] for r in sampled] == direct.steps[0].tolist()  # the one trajectory the samples share
