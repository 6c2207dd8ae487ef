"""hrm-analyze / training.analysis: participation ratio against closed forms, calibration error, the segment
pass against `solve`, and the whole command on tiny HRM and TRM models."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling_hrm import HRMConfig, HRMForPuzzleSolving, TRMConfig, TRMForPuzzleSolving
from training.analysis import (Moments, analyze, expected_calibration_error, first_stable_segment, participation_ratio,
                               pca_2d, run_trajectories, untrained_like)
from training.evaluation import row_scores

SMALL = dict(vocab_size=6, seq_len=16, num_puzzle_identifiers=1, hidden_size=16, num_heads=2, puzzle_emb_ndim=16,
             H_cycles=2, L_cycles=2, halt_max_steps=3)


def tiny(kind: str, seed: int = 0, q_scale: float = 0.0):
    torch.manual_seed(seed)
    if kind == "hrm":
        model = HRMForPuzzleSolving(HRMConfig(**SMALL, H_layers=1, L_layers=1))
    else:
        model = TRMForPuzzleSolving(TRMConfig(**SMALL, L_layers=1, puzzle_emb_len=1))
    if q_scale:  # a random Q head, so rows halt at different segments
        with torch.no_grad():
            model.q_head.weight.normal_(0.0, q_scale)
            model.q_head.bias.zero_()
    return model.eval()


# ---------------------------------------------------------------------------------------------------------
# Participation ratio: closed forms
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 3, 16])
def test_pr_of_isotropic_states_is_the_dimension(d):
    # ±e_i: zero mean, covariance a multiple of the identity.
    states = np.concatenate([np.eye(d), -np.eye(d)])
    assert participation_ratio(states) == pytest.approx(d, rel=1e-12)
    # Any rotation of an isotropic cloud stays isotropic.
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(d, d)))[0]
    assert participation_ratio(states @ rotation + 5.0) == pytest.approx(d, rel=1e-9)


def test_pr_of_rank_one_states_is_one():
    rng = np.random.default_rng(1)
    states = np.outer(rng.normal(size=50), rng.normal(size=8)) + rng.normal(size=8)
    assert participation_ratio(states) == pytest.approx(1.0, rel=1e-9)


def test_pr_hand_computed_and_against_eigenvalues():
    # Covariance eigenvalues 3 and 1 (samples ±√3 e1, ±e2): PR = (3 + 1)² / (9 + 1) = 1.6.
    r3 = math.sqrt(3)
    states = np.array([[r3, 0], [-r3, 0], [0, 1], [0, -1]])
    assert participation_ratio(states) == pytest.approx(1.6, rel=1e-12)
    # Three directions with variances 4, 1, 1 (scaled ±e_i): (4 + 1 + 1)² / (16 + 1 + 1) = 2.
    states = np.concatenate([np.diag([2.0, 1.0, 1.0]), -np.diag([2.0, 1.0, 1.0])])
    assert participation_ratio(states) == pytest.approx(2.0, rel=1e-12)
    # Random data: the trace formula equals the eigenvalue definition.
    x = np.random.default_rng(2).normal(size=(40, 6)) @ np.diag([5, 3, 2, 1, 0.5, 0.1])
    lam = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    assert participation_ratio(x) == pytest.approx(lam.sum() ** 2 / (lam ** 2).sum(), rel=1e-9)


def test_pr_streamed_in_pieces_equals_one_shot_and_edge_cases():
    x = torch.randn(30, 5, generator=torch.Generator().manual_seed(0))
    parts = Moments(5)
    for chunk in x.split(7):
        piece = Moments(5)
        piece.add(chunk)
        parts.merge(piece)
    assert parts.participation_ratio() == pytest.approx(participation_ratio(x), rel=1e-12)
    assert math.isnan(participation_ratio(np.ones((5, 3))))  # no variance: undefined
    with pytest.raises(ValueError, match="samples >= 2"):
        participation_ratio(np.ones((1, 3)))


def test_pca_ece_and_first_stable_segment():
    points = np.array([[0, 0, 0], [2, 0, 0], [0, 1, 0], [2, 1, 0]], dtype=float)
    mean, axes, ratio = pca_2d(points)
    assert np.allclose(mean, [1, 0.5, 0]) and np.allclose(abs(axes[0]), [1, 0, 0]) and np.allclose(ratio, [0.8, 0.2])

    # Bin 9: confidence 0.9, accuracy 0.5; bin 1: confidence 0.1, accuracy 0 → ECE = ½·0.4 + ½·0.1 = 0.25.
    ece, table = expected_calibration_error([0.9, 0.9, 0.1, 0.1], [1, 0, 0, 0], bins=10)
    assert ece == pytest.approx(0.25)
    assert table[9]["count"] == 2 and table[9]["accuracy"] == 0.5 and table[5]["count"] == 0
    assert expected_calibration_error([1.0, 0.0], [1, 0])[0] == 0.0  # 1.0 falls in the last bin

    exact = np.array([[0, 1, 1, 0, 1],    # segment 1
                      [1, 1, 0, 0, 1],    # segment 2
                      [1, 1, 1, 0, 0]], dtype=bool)
    assert first_stable_segment(exact).tolist() == [2, 1, 3, 0, 0]


# ---------------------------------------------------------------------------------------------------------
# The segment pass
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["hrm", "trm"])
def test_segment_pass_matches_solve(kind):
    model = tiny(kind, q_scale=2.0)
    rng = np.random.default_rng(0)
    arrays = {"inputs": rng.integers(1, 6, (20, 16)).astype(np.uint8),
              "labels": rng.integers(2, 6, (20, 16)).astype(np.uint8)}
    arrays["labels"][:5] = 0  # unscored rows
    order = rng.permutation(20)
    with torch.no_grad():  # shift the halt bias so about half the rows halt after the first segment
        out = model(torch.as_tensor(arrays["inputs"].astype(np.int64)))
        margin = out.q_halt_logits - (0 if model.config.no_ACT_continue else out.q_continue_logits)
        model.q_head.bias[0] -= float(margin.median()) + 1e-3
    run = run_trajectories(model, arrays, max_steps=4, batch_size=6, order=order)
    x = torch.as_tensor(arrays["inputs"][order].astype(np.int64))
    trace = model.solve(x, max_steps=4, early_exit=False, return_trace=True).trace.numpy()
    labels = arrays["labels"][order]
    for t in range(4):
        assert (run["exact"][t] == row_scores(trace[t], labels)[0]).all()
    act = model.solve(x, max_steps=4, early_exit=True)
    assert (np.minimum(run["halt_step"], 4) == act.steps.numpy()).all()
    assert len(set(act.steps.tolist())) > 1  # the check above sees different halting segments
    assert run["scored"].tolist() == (labels != 0).any(-1).tolist()
    # The answer-change fraction counts scored tokens that differ from the previous segment.
    scored = labels != 0
    changed = ((trace[2] != trace[1]) & scored).sum(-1) / np.maximum(scored.sum(-1), 1)
    assert np.allclose(run["answer_changed"][2], changed)
    # PR of the trajectories: all segments pooled, bounded by the samples; the scaling curve ends with every row.
    assert run["scaling"]["num_puzzles"] == [2, 4, 8, 16, 20]
    for name in ("z_H", "z_L"):
        assert run["scaling"][name][-1] == pytest.approx(run["pr"][name]["trajectory"], rel=1e-9)
        assert 1.0 <= run["pr"][name]["trajectory"] <= min(16, 20 * 4 - 1)
        assert run["scaling"][name][0] <= 2 * 4 - 1 + 1e-9  # 2 puzzles × 4 segments
    # The state change is relative to the state before the segment.
    assert (run["rel_change_z_H"] > 0).all()


def test_scaling_curve_is_the_pr_of_the_first_rows():
    model = tiny("hrm")
    rng = np.random.default_rng(3)
    arrays = {"inputs": rng.integers(1, 6, (12, 16)).astype(np.uint8),
              "labels": rng.integers(2, 6, (12, 16)).astype(np.uint8)}
    full = run_trajectories(model, arrays, max_steps=2, batch_size=5)
    first8 = run_trajectories(model, {k: v[:8] for k, v in arrays.items()}, max_steps=2, batch_size=3)
    assert full["scaling"]["num_puzzles"][2] == 8
    assert full["scaling"]["z_L"][2] == pytest.approx(first8["pr"]["z_L"]["trajectory"], rel=1e-6)
    tokens = run_trajectories(model, arrays, max_steps=2, pooling="tokens")
    assert tokens["pr_samples"]["trajectory"] == 12 * 2 * 16
    assert tokens["pr"]["z_H"]["trajectory"] != pytest.approx(full["pr"]["z_H"]["trajectory"])


def test_untrained_like_is_a_fresh_model_of_the_same_config():
    model = tiny("trm")
    with torch.no_grad():
        model.lm_head.weight.add_(1.0)
    a, b = untrained_like(model, seed=3), untrained_like(model, seed=3)
    assert type(a) is type(model) and a.config.to_dict() == model.config.to_dict()
    assert torch.equal(a.lm_head.weight, b.lm_head.weight) and not torch.equal(a.lm_head.weight, model.lm_head.weight)


# ---------------------------------------------------------------------------------------------------------
# The whole command
# ---------------------------------------------------------------------------------------------------------
ROUNDS = np.array([1, 2, 3, -1] * 10, dtype=np.int32)  # the depth column of the 40 test rows (-1: stuck)


@pytest.fixture(scope="module")
def sudoku4(tmp_path_factory) -> Path:
    """The tiny 4x4 dataset of the training tests, its test split given a `rounds` depth column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from training_fixtures import write_tiny_sudoku

    out = write_tiny_sudoku(tmp_path_factory.mktemp("analysis") / "sudoku4", num_train=8, num_test=40)
    for split, rounds in (("train", np.ones(8, np.int32)), ("test", ROUNDS)):  # the splits share one schema
        shard = out / "data" / f"{split}-00000-of-00001.parquet"
        pq.write_table(pq.read_table(shard).append_column("rounds", pa.array(rounds)), shard)
    return out


def run_cli(argv) -> tuple[int, str]:
    from training.hrm_analyze import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


@pytest.mark.parametrize("kind", ["hrm", "trm"])
def test_hrm_analyze_writes_report_and_pictures(kind, sudoku4, tmp_path):
    model_dir = tmp_path / "model"
    tiny(kind, seed=5, q_scale=1.0).save_pretrained(model_dir)  # --compare untrained draws with seed 0
    out = tmp_path / "out"
    code, text = run_cli(["--model", model_dir, "--dataset", sudoku4, "--compare", "untrained", "--limit", "30",
                          "--max-steps", "4", "--output-dir", out, "--num-trajectories", "3"])
    assert code == 0, text
    assert "PR trajectory" in text and "ECE" in text
    report = json.loads((out / "analysis.json").read_text())
    drawn_rows = np.sort(np.random.default_rng(0).choice(len(ROUNDS), 30, replace=False))  # --limit 30, seed 0
    for name in ("participation_ratio.png", "convergence.png", "calibration.png", "trajectories.png",
                 "per_puzzle.npz"):
        assert (out / name).stat().st_size > 1000, name
    assert report["rows"] == 30 and report["pooling"] == "mean" and "protocol" in report
    assert [m["label"] for m in report["models"]] == [f"{kind.upper()} model", f"{kind.upper()} untrained"]
    assert report["depth"]["column"] == "rounds" and report["depth"]["buckets"] == ["1", "2", "3", "stuck"]
    for m in report["models"]:
        pr = m["participation_ratio"]
        assert m["segments"] == 4 and len(pr["z_H"]["per_segment"]) == 4
        assert pr["samples"] == {"trajectory": 120, "per_segment": 30}
        assert pr["max_possible"] == {"trajectory": 16, "per_segment": 16}
        for state in ("z_H", "z_L"):
            assert 1.0 <= pr[state]["trajectory"] <= 16
        conv = m["convergence"]
        assert {b: c["puzzles"] for b, c in conv["by_depth"].items()} == {
            ("stuck" if r < 0 else str(r)): int((ROUNDS[drawn_rows] == r).sum()) for r in (1, 2, 3, -1)}
        assert sum(conv["first_stable_segment_histogram"].values()) == 30
        assert conv["all"]["answer_tokens_changed"][0] is None and len(conv["all"]["rel_change_z_L"]) == 4
        halt = m["halting"]
        assert sum(b["count"] for b in halt["reliability_all_segments"]) == 30 * 4
        assert 0.0 <= halt["ece_all_segments"] <= 1.0 and 1 <= halt["act_steps_mean"] <= 4
        assert len(m["trajectories"]["rows"]) == 3
    if kind == "trm":
        assert report["models"][0]["state_names"] == {"z_H": "y", "z_L": "z"}
    # The trained and the fresh model are different models.
    assert report["models"][0]["participation_ratio"] != report["models"][1]["participation_ratio"]
    rows = np.load(out / "per_puzzle.npz")
    assert rows["m0_exact"].shape == (30, 4) and sorted(rows["row"].tolist()) == drawn_rows.tolist()


def test_analyze_api_matches_the_command_and_takes_a_loaded_model(sudoku4, tmp_path):
    model = tiny("hrm")
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    code, text = run_cli(["--model", model_dir, "--dataset", sudoku4, "--limit", "12", "--output-dir", tmp_path / "cli"])
    assert code == 0, text
    report = analyze(model, str(sudoku4), limit=12)
    cli = json.loads((tmp_path / "cli" / "analysis.json").read_text())
    assert report["models"][0]["participation_ratio"] == cli["models"][0]["participation_ratio"]
    with pytest.raises(ValueError, match="limit must be an integer >= 1, got 0"):
        analyze(model, str(sudoku4), limit=0)
    with pytest.raises(ValueError, match="pooling must be one of mean, tokens"):
        analyze(model, str(sudoku4), pooling="max")
    with pytest.raises(TypeError, match="compare must be an HRM/TRM model"):
        analyze(model, str(sudoku4), compare=3)


def test_limit_draws_rows_from_the_whole_split():
    """A split written bucket by bucket (shallow first) is sampled over every depth, the same rows for a seed."""
    from training.evaluation import select_rows

    arrays = {"inputs": np.arange(100)[:, None], "labels": np.arange(100)[:, None]}
    keep, picked = select_rows(None, {"task": "sudoku"}, arrays, 10, seed=0)
    assert len(keep) == 10 and np.all(np.diff(keep) > 0) and keep.max() >= 50
    assert np.array_equal(picked["inputs"][:, 0], keep)
    assert np.array_equal(select_rows(None, {"task": "sudoku"}, arrays, 10, seed=0)[0], keep)
    assert not np.array_equal(select_rows(None, {"task": "sudoku"}, arrays, 10, seed=1)[0], keep)
    assert np.array_equal(select_rows(None, {"task": "sudoku"}, arrays, 100, seed=0)[0], np.arange(100))
