"""Evaluation: the puzzle_accuracy and arc_pass_at_k metric modules, evaluate_model and the one-pass evaluator."""

import json

import numpy as np
import pytest
import torch

from training.evaluation import (budget_view, evaluate_model, grid_to_str, load_metric, run_segments, run_solve,
                                 str_to_grid)


def tiny_model(seq_len=16, vocab=6, halt_max_steps=4, seed=0, q_scale=0.0):
    """A random HRM small enough for tests (hidden 32, 1+1 layers); `q_scale` > 0 randomises the Q head so rows
    halt at different steps."""
    from modeling_hrm import HRMConfig, HRMForPuzzleSolving

    torch.manual_seed(seed)
    cfg = HRMConfig(vocab_size=vocab, seq_len=seq_len, hidden_size=32, num_heads=2, H_layers=1, L_layers=1,
                    H_cycles=1, L_cycles=2, puzzle_emb_ndim=32, halt_max_steps=halt_max_steps)
    model = HRMForPuzzleSolving(cfg).eval()
    if q_scale:
        with torch.no_grad():
            model.q_head.weight.normal_(0.0, q_scale)
            model.q_head.bias.zero_()
    return model


def spread_halting(model, arrays):
    """Shift the Q head's halt bias so that about half of the rows halt after the first segment and the rest
    later: the halting steps then differ between rows (what the early-exit tests need)."""
    with torch.no_grad():
        out = model(torch.as_tensor(arrays["inputs"].astype(np.int64)))
        diff = (out.q_halt_logits - out.q_continue_logits).numpy()
        model.q_head.bias[0] -= float(np.median(diff)) + 1e-3
    return model


def random_arrays(n, seq_len=16, vocab=6, seed=0):
    rng = np.random.default_rng(seed)
    return {"inputs": rng.integers(1, vocab, (n, seq_len)).astype(np.uint8),
            "labels": rng.integers(2, vocab, (n, seq_len)).astype(np.uint8),
            "puzzle_identifiers": np.zeros(n, dtype=np.int32), "group_id": np.arange(n, dtype=np.int32)}


# ---------------------------------------------------------------------------------------------------- metrics
def test_puzzle_accuracy_hand_made():
    metric = load_metric("puzzle_accuracy")
    preds = [[2, 3, 4, 5], [2, 3, 9, 5], [7, 7, 7, 7], [2, 2, 2, 2]]
    refs = [[2, 3, 4, 5], [2, 3, 4, 0], [0, 0, 0, 0], [2, 2, 3, 3]]
    # row 0 exact; row 1: 3 scored cells, one wrong; row 2 has nothing scored (left out); row 3 half right.
    res = metric.compute(predictions=preds, references=refs, steps=[1, 2, 3, 2], q_halt_logits=[2.0, 1.0, 5.0, -1.0],
                         ignore_index=0)
    assert res["num_examples"] == 3 and res["num_rows"] == 4
    assert res["exact_accuracy"] == pytest.approx(1 / 3)
    assert res["token_accuracy"] == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    # q_halt >= 0 predicts "right": row 0 agrees, row 1 (wrong, +1.0) disagrees, row 3 (wrong, -1) agrees.
    assert res["q_halt_accuracy"] == pytest.approx(2 / 3)
    assert res["mean_steps"] == pytest.approx(2.0)
    assert res["steps_histogram"] == {1: 1, 2: 2, 3: 1}


def _snippet(doc: str) -> str:
    return doc.split("```python\n", 1)[1].split("```", 1)[0]


def test_evaluate_load_snippet_runs_from_any_directory(tmp_path):
    """The documented snippet (training/metrics/__init__.py) loads the installed metric by path, offline, from a
    directory that is not the repository."""
    import subprocess
    import sys

    import training.metrics

    code = _snippet(training.metrics.__doc__)
    code = code.replace("accuracy.compute(", "print('RESULT', accuracy.compute(") + ")"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1"})
    assert "RESULT" in run.stdout, run.stderr[-2000:]
    assert "'exact_accuracy': 0.5" in run.stdout


def test_metric_path_names_the_known_metrics():
    from training.metrics import METRICS, metric_path

    for name in METRICS:
        assert metric_path(name).endswith(name)
    with pytest.raises(ValueError, match="unknown metric 'accuracy'; this package has puzzle_accuracy, arc_pass_at_k"):
        metric_path("accuracy")


def test_puzzle_accuracy_ignore_minus_100():
    metric = load_metric("puzzle_accuracy")
    res = metric.compute(predictions=[[1, 2, 3]], references=[[1, -100, -100]], steps=[1], q_halt_logits=[0.0])
    assert res["exact_accuracy"] == 1.0 and res["token_accuracy"] == 1.0


def arc_compute(rows, k_values=(1, 2)):
    metric = load_metric("arc_pass_at_k")
    preds, refs, tasks, idx, conf = zip(*rows)
    return metric.compute(predictions=list(preds), references=list(refs), task_ids=list(tasks),
                          test_indices=list(idx), confidences=list(conf), k_values=list(k_values))


def test_arc_voting_and_pass_at_k():
    rows = [
        # task a, one test input: "1" has 2 votes, "2" has 3 votes -> rank 1 "2" (wrong), rank 2 "1" (right).
        ("1", "1", "a", 0, 0.9), ("1", "1", "a", 0, 0.9),
        ("2", "1", "a", 0, 0.1), ("2", "1", "a", 0, 0.1), ("2", "1", "a", 0, 0.1),
        # task b: tie of votes (1 each); "5" has the higher confidence and is right -> pass@1.
        ("4", "5", "b", 0, 0.2), ("5", "5", "b", 0, 0.8),
        # task c: two test inputs, only the first solved -> not counted by pass@K, half by the fractional score.
        ("7", "7", "c", 0, 0.5), ("8", "9", "c", 1, 0.5), ("", "9", "c", 1, 0.99),
        # task d: the right answer only third -> solved at pass@3 only.
        ("x1", "x3", "d", 0, 0.9), ("x1", "x3", "d", 0, 0.9), ("x2", "x3", "d", 0, 0.8), ("x3", "x3", "d", 0, 0.1),
    ]
    res = arc_compute(rows, k_values=(1, 2, 3))
    per = res["per_task"]
    assert per["a"]["ranks"] == [2] and per["a"]["top"] == ["2"]
    assert per["b"]["ranks"] == [1]
    assert per["c"]["ranks"] == [1, None] and per["c"]["fractional@2"] == 0.5 and not per["c"]["pass@2"]
    assert per["d"]["ranks"] == [3]
    assert res["num_tasks"] == 4 and res["num_test_inputs"] == 5
    assert res["pass@1"] == pytest.approx(1 / 4)   # b
    assert res["pass@2"] == pytest.approx(2 / 4)   # a, b
    assert res["pass@3"] == pytest.approx(3 / 4)   # a, b, d
    assert res["official_score"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)


def test_arc_undecodable_predictions_vote_as_the_empty_grid():
    # As the original: an undecodable prediction is the 0x0 grid and votes; three of them outvote one right
    # answer for the first slot, which then comes second.
    res = arc_compute([("", "3", "t", 0, 0.9)] * 3 + [("3", "3", "t", 0, 0.1)])
    assert res["per_task"]["t"]["ranks"] == [2] and res["per_task"]["t"]["top"] == [""]
    assert res["pass@1"] == 0.0 and res["pass@2"] == 1.0


def test_arc_tie_breaks_by_mean_confidence_not_sum():
    # "a": two votes at 0.3 (sum 0.6) vs "b": two votes at 0.5 — equal votes, b's mean is higher.
    res = arc_compute([("a", "b", "t", 0, 0.3), ("a", "b", "t", 0, 0.3), ("b", "b", "t", 0, 0.5),
                       ("b", "b", "t", 0, 0.5)])
    assert res["per_task"]["t"]["ranks"] == [1]
    res = arc_compute([("a", "b", "t", 0, 0.3), ("a", "b", "t", 0, 0.3), ("b", "b", "t", 0, 0.2),
                       ("b", "b", "t", 0, 0.2)])
    assert res["per_task"]["t"]["ranks"] == [2]


def test_arc_inconsistent_references_raise_and_unknown_are_unscored():
    with pytest.raises(ValueError, match="disagree on the reference"):
        arc_compute([("1", "1", "t", 0, 0.5), ("1", "2", "t", 0, 0.5)])
    res = arc_compute([("1", "", "hidden", 0, 0.5), ("1", "1", "known", 0, 0.5)])
    assert res["num_tasks"] == 1 and res["num_unscored_tasks"] == 1 and res["pass@2"] == 1.0


def test_grid_string_roundtrip():
    grid = np.array([[0, 1, 2], [9, 8, 7]])
    assert grid_to_str(grid) == "012|987"
    np.testing.assert_array_equal(str_to_grid(grid_to_str(grid)), grid)
    assert grid_to_str(np.zeros((0, 0))) == ""


# ---------------------------------------------------------------------------------------------- evaluate_model
def test_evaluate_model_matches_manual_scoring():
    model = tiny_model(q_scale=0.5)
    arrays = random_arrays(24)
    # Make some rows exactly right for the model so exact accuracy is not trivially 0.
    preds = run_solve(model, arrays, batch_size=8, max_steps=3, early_exit=False)["predictions"]
    arrays["labels"][:10] = preds[:10]
    arrays["labels"][5, :4] = 0  # unscored cells are ignored
    model.train()
    res = evaluate_model(model, arrays, batch_size=7, max_steps=3, early_exit=False)
    assert model.training, "evaluate_model must restore train mode"
    assert set(res) == {"exact_accuracy", "token_accuracy", "mean_steps", "q_halt_accuracy", "num_examples"}
    assert all(isinstance(v, float) for v in res.values())
    assert res["num_examples"] == 24.0 and res["mean_steps"] == 3.0
    assert res["exact_accuracy"] == pytest.approx(10 / 24)
    valid = arrays["labels"] != 0
    token = ((preds == arrays["labels"]) & valid).sum(1) / valid.sum(1)
    assert res["token_accuracy"] == pytest.approx(token.mean(), rel=1e-6)

    early = evaluate_model(model, arrays, batch_size=7, max_steps=3, early_exit=True)
    assert 1.0 <= early["mean_steps"] < 3.0  # the random Q head halts some rows early


def test_run_segments_reproduces_solve_for_every_budget():
    """The one-pass evaluator's view of budget m (with and without early exit) equals model.solve(max_steps=m)."""
    arrays = random_arrays(20, seed=1)
    model = spread_halting(tiny_model(q_scale=0.5, seed=1), arrays)
    seg = run_segments(model, arrays, max_steps=5, headline_steps=3, batch_size=6)
    for budget in (1, 3, 5):
        for early in (False, True):
            ref = run_solve(model, arrays, batch_size=20, max_steps=budget, early_exit=early)
            view = budget_view(seg, budget, early)
            np.testing.assert_array_equal(view["steps"], ref["steps"])
            np.testing.assert_allclose(view["q_halt_logits"], ref["q_halt_logits"], atol=1e-4)
    np.testing.assert_array_equal(seg["pred_full"], run_solve(model, arrays, max_steps=3, early_exit=False)["predictions"])
    np.testing.assert_array_equal(seg["pred_act"], run_solve(model, arrays, max_steps=3, early_exit=True)["predictions"])
    assert len(set(seg["halt_step"].tolist())) > 1, "test needs rows halting at different steps"


def test_evaluate_checkpoint_writes_report(tmp_path):
    import datasets

    from training.hrm_evaluate import evaluate_checkpoint

    model = tiny_model(q_scale=0.5)
    arrays = random_arrays(12)
    ds = datasets.Dataset.from_dict({k: v.tolist() for k, v in arrays.items()})
    meta = {"task": "sudoku", "seq_len": 16, "vocab_size": 6}
    res = evaluate_checkpoint(model, ds, meta, arrays, max_steps=2, budgets=[1, 2, 4], batch_size=5,
                              output_dir=tmp_path, num_examples=2)
    for name in ("results.json", "scaling_curve.png", "steps_histogram.png", "examples.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["scaling"]["max_steps"] == [1, 2, 4]
    # The curve's point at the headline budget is the headline exact accuracy.
    assert saved["scaling"]["full"][1] == pytest.approx(res["full"]["exact_accuracy"])
    assert saved["act"]["mean_steps"] <= 2.0 and sum(saved["act"]["steps_histogram"].values()) == 12


def test_evaluate_checkpoint_reports_accuracy_per_depth_bucket():
    """An open-world build's depth buckets: rows the model gets right are counted in their own bucket only."""
    import datasets

    from training.hrm_evaluate import _summary, evaluate_checkpoint

    model = tiny_model(q_scale=0.5)
    arrays = random_arrays(8)
    predicted = run_solve(model, arrays, max_steps=2, early_exit=False)["predictions"]
    right = np.array([1, 0, 1, 1, 0, 0, 1, 0], bool)  # rows whose label is the model's own answer
    arrays["labels"] = np.where(right[:, None], predicted, arrays["labels"]).astype(arrays["labels"].dtype)
    arrays["labels"][~right, 0] = (predicted[~right, 0] % 5) + 1  # and the others differ somewhere
    rounds = np.array([1, 2, 3, 3, 6, -1, -1, 4])  # -1: needs search
    ds = datasets.Dataset.from_dict({**{k: v.tolist() for k, v in arrays.items()}, "rounds": rounds.tolist()})
    meta = {"task": "sudoku", "seq_len": 16, "vocab_size": 6, "depth_buckets": "1-2,3,4,5,search"}
    res = evaluate_checkpoint(model, ds, meta, arrays, max_steps=2, budgets=[2], batch_size=5, num_examples=0)
    assert res["by_depth"] == {"1-2": {"exact_accuracy": 0.5, "num_puzzles": 2},
                               "3": {"exact_accuracy": 1.0, "num_puzzles": 2},
                               "4": {"exact_accuracy": 0.0, "num_puzzles": 1},
                               "search": {"exact_accuracy": 0.5, "num_puzzles": 2}}
    assert res["exact_accuracy"] == pytest.approx(4 / 8)
    assert "search: 50.0% of 2" in _summary(res)


def test_evaluate_checkpoint_rejects_mismatched_dataset():
    from training.evaluation import check_model_fits_dataset

    model = tiny_model()
    with pytest.raises(ValueError, match="seq_len=81"):
        check_model_fits_dataset(model.config, {"seq_len": 81, "vocab_size": 6}, random_arrays(2))


class _TwoRankAccelerator:
    """Stands in for accelerate with 2 processes inside one process: `gather` concatenates what both ranks
    contributed to the same call (rank 0's contributions are replayed from a first, recording pass)."""

    num_processes = 2
    device = torch.device("cpu")

    def __init__(self, rank, recorded=None):
        self.process_index, self.recorded, self.calls = rank, recorded, []
        self.is_main_process = rank == 0

    def unwrap_model(self, model):
        return model

    def gather(self, tensor):
        self.calls.append(tensor.clone())
        if self.recorded is None:
            return torch.cat([tensor, tensor])  # recording pass: shape-correct placeholder
        return torch.cat([self.recorded[len(self.calls) - 1], tensor])


def test_sharded_evaluation_reassembles_every_row_once():
    """Rows are split over 2 processes (with padding: 11 rows) and put back in order, duplicates dropped."""
    model = tiny_model(q_scale=0.5, seed=2)
    arrays = random_arrays(11, seed=2)
    single = run_solve(model, arrays, batch_size=4, max_steps=3, early_exit=True)
    rank0 = _TwoRankAccelerator(0)
    run_solve(model, arrays, batch_size=4, max_steps=3, early_exit=True, accelerator=rank0)
    rank1 = _TwoRankAccelerator(1, recorded=rank0.calls)
    both = run_solve(model, arrays, batch_size=4, max_steps=3, early_exit=True, accelerator=rank1)
    assert rank1.calls[0].tolist() == [1, 3, 5, 7, 9, 9]  # rank 1's shard, padded by repeating its last row
    for key in single:  # the same rows in the same order; logits agree to float rounding (other batch shapes)
        if np.issubdtype(single[key].dtype, np.floating):
            np.testing.assert_allclose(both[key], single[key], rtol=0, atol=1e-5, err_msg=key)
        else:
            np.testing.assert_array_equal(both[key], single[key], err_msg=key)


def test_arc_scores_invert_versions_then_vote():
    """Per-version token predictions → inverse transforms → votes → pass@K, on hand-made predictions."""
    formats = pytest.importorskip("dataset_scripts.formats")
    from training.evaluation import arc_scores

    rng = np.random.default_rng(1)
    answers = {("t1", 0): rng.integers(0, 10, (2, 3)), ("t1", 1): rng.integers(0, 10, (4, 4)),
               ("t2", 0): rng.integers(0, 10, (3, 1))}
    wrong = rng.integers(0, 10, (5, 5))
    rows = []  # (task, index, k, perm, predicted original-frame grid)
    for (task, index), answer in answers.items():
        for v in range(6):
            k, perm = v % 8, np.concatenate([[0], rng.permutation(np.arange(1, 10))])
            # t1/0: 4 right vs 2 wrong; t1/1: 2 right vs 4 wrong (right answer second); t2/0: all right.
            right = {("t1", 0): v < 4, ("t1", 1): v < 2, ("t2", 0): True}[(task, index)]
            rows.append((task, index, k, perm, answer if right else wrong))
    encode = lambda grid, k, perm: np.asarray(formats.encode_arc_grid(formats.dihedral(perm[grid], k))).reshape(-1)
    preds = np.stack([encode(g, k, p) for _, _, k, p, g in rows])
    labels = np.stack([encode(answers[(t, i)], k, p) for t, i, k, p, _ in rows])
    res = arc_scores(preds, labels, np.full(len(rows), 0.5), [r[0] for r in rows], [r[1] for r in rows],
                     [r[2] for r in rows], [r[3] for r in rows], k_values=(1, 2))
    assert res["per_task"]["t1"]["ranks"] == [1, 2]
    assert res["per_task"]["t2"]["ranks"] == [1]
    assert res["pass@1"] == 0.5 and res["pass@2"] == 1.0
    assert res["fractional@1"] == pytest.approx((0.5 + 1) / 2)


def test_evaluate_checkpoint_arc_scores_test_pairs_only(tmp_path):
    formats = pytest.importorskip("dataset_scripts.formats")
    import datasets

    from training.hrm_evaluate import evaluate_checkpoint

    model = tiny_model(seq_len=900, vocab=12, halt_max_steps=2)
    rng = np.random.default_rng(0)
    rows = []
    for task in ("a", "b"):
        out = rng.integers(0, 10, (2, 3))
        for k, is_test in ((0, True), (3, True), (5, False)):
            perm = np.concatenate([[0], rng.permutation(np.arange(1, 10))])
            enc = lambda g: np.asarray(formats.encode_arc_grid(formats.dihedral(perm[g], k))).reshape(-1)
            rows.append({"inputs": enc(out[::-1]).tolist(), "labels": enc(out).tolist(), "puzzle_identifiers": 0,
                         "group_id": 0, "task_id": task, "pair_index": 1 if is_test else 0,
                         "is_test_pair": is_test, "dihedral": k, "color_perm": perm.tolist()})
    ds = datasets.Dataset.from_list(rows)
    arrays = {"inputs": np.array(ds["inputs"], dtype=np.uint8), "labels": np.array(ds["labels"], dtype=np.uint8),
              "puzzle_identifiers": np.zeros(len(ds), np.int32), "group_id": np.zeros(len(ds), np.int32)}
    res = evaluate_checkpoint(model, ds, {"task": "arc", "seq_len": 900, "vocab_size": 12}, arrays, max_steps=2,
                              budgets=[1, 2], batch_size=4, output_dir=tmp_path, num_examples=1)
    assert res["num_rows"] == 4  # the demo pairs (is_test_pair False) are not scored
    assert res["arc"]["num_tasks"] == 2 and res["arc"]["num_test_inputs"] == 2
    assert set(res["arc"]["per_task"]) == {"a", "b"} and "pass@2" in res and "official_score" in res
    assert (tmp_path / "examples.png").exists()


def test_hrm_evaluate_command_end_to_end(tmp_path, capsys):
    """`hrm-evaluate` on a dataset folder in the contract's layout and a saved checkpoint."""
    pytest.importorskip("dataset_scripts.common")
    import datasets

    from training.hrm_evaluate import main

    arrays = random_arrays(10)
    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    features = datasets.Features({"inputs": datasets.List(datasets.Value("uint8"), length=16),
                                  "labels": datasets.List(datasets.Value("uint8"), length=16),
                                  "puzzle_identifiers": datasets.Value("int32"), "group_id": datasets.Value("int32")})
    datasets.Dataset.from_dict({k: v.tolist() for k, v in arrays.items()}, features=features).to_parquet(
        str(folder / "data" / "test-00000-of-00001.parquet"))
    (folder / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: test\n"
                                      "    path: data/test-*.parquet\n---\n")
    (folder / "hrm_dataset.json").write_text(json.dumps({
        "task": "sudoku", "vocab_size": 6, "seq_len": 16, "pad_id": 0, "ignore_label_id": -100,
        "num_puzzle_identifiers": 1, "puzzle_identifier_names": ["<blank>"], "grid_height": 4, "grid_width": 4,
        "num_rows": {"test": 10}, "token_names": ["<pad>", "<blank>", "1", "2", "3", "4"]}))
    model_dir = tmp_path / "model"
    tiny_model(q_scale=0.5).save_pretrained(model_dir)
    out_dir = tmp_path / "eval"
    code = main(["--model", str(model_dir), "--dataset", str(folder), "--split", "test", "--max-steps", "2",
                 "--output-dir", str(out_dir), "--batch-size", "4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "exact accuracy" in out and "accuracy vs max_steps" in out
    results = json.loads((out_dir / "results.json").read_text())
    assert results["num_rows"] == 10 and results["max_steps"] == 2 and results["scaling"]["max_steps"] == [1, 2, 4]
    assert (out_dir / "scaling_curve.png").exists() and (out_dir / "steps_histogram.png").exists()
    # A mismatched model is refused with one line.
    other = tmp_path / "other"
    tiny_model(seq_len=81, vocab=11).save_pretrained(other)
    code = main(["--model", str(other), "--dataset", str(folder), "--output-dir", str(out_dir)])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("hrm-evaluate: error:") and len(err.strip().splitlines()) == 1


def test_evaluate_load_by_hub_id_from_the_layout_push_metric_uploads(tmp_path):
    """`evaluate.load("owner/name")` reads `spaces/owner/name/resolve/<rev>/name.py`: serve the folder layout that
    `push_metric` uploads from a local HTTP server (HF_ENDPOINT) and load the metric through it."""
    import shutil
    import subprocess
    import sys

    from training.metrics import metric_path

    space = tmp_path / "hub" / "spaces" / "someone" / "hrm-puzzle-accuracy" / "resolve" / "main"
    space.mkdir(parents=True)
    shutil.copy(f"{metric_path('puzzle_accuracy')}/puzzle_accuracy.py", space / "hrm-puzzle-accuracy.py")
    script = f"""
import functools, http.server, os, threading
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory={str(tmp_path / 'hub')!r})
handler.log_message = lambda *args: None
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{{server.server_address[1]}}"  # read when evaluate is imported
import evaluate
metric = evaluate.load("someone/hrm-puzzle-accuracy", cache_dir={str(tmp_path / 'cache')!r})
print("RESULT", metric.compute(predictions=[[2, 3], [2, 4]], references=[[2, 3], [2, 3]], steps=[1, 2],
                               q_halt_logits=[3.0, 1.0])["exact_accuracy"])
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         env={k: v for k, v in __import__("os").environ.items() if not k.startswith("HF_")})
    assert "RESULT 0.5" in run.stdout, run.stderr[-2000:]
