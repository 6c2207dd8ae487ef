"""ARC as the original does it: extra task sources (ConceptARC), the sampler and step count, translation share,
per-version puzzle ids and voting (undecodable = the 0x0 grid), and the whole path (train, pass@K, hrm-solve)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_scripts import arc as A
from dataset_scripts import formats as F
from dataset_scripts.build_arc_dataset import main as build_arc
from dataset_scripts.common import dataset_arrays, load_hrm_dataset, run_cli
from training.train import BatchStream

CONCEPTARC = Path(os.environ.get("HRM_CONCEPTARC_DIR", "/work/shared/data/conceptarc"))
REPO = Path(__file__).resolve().parents[1]


def _task(rng, n_train, size=(3, 4), colours=(1, 2, 3), n_test=1):
    """A random task whose output = input flipped left-right."""
    def pair():
        g = rng.choice([0, *colours], size=size)
        return {"input": g.tolist(), "output": g[:, ::-1].tolist()}
    return {"train": [pair() for _ in range(n_train)], "test": [pair() for _ in range(n_test)]}


@pytest.fixture
def toy_arc(tmp_path):
    """3 training tasks with 2, 3 and 4 demo pairs (+1 test pair each), 2 evaluation tasks with 2 demo pairs."""
    rng = np.random.default_rng(0)
    root = tmp_path / "arc"
    (root / "training").mkdir(parents=True)
    (root / "evaluation").mkdir()
    for i, n in enumerate((2, 3, 4)):
        (root / "training" / f"t{i}.json").write_text(json.dumps(_task(rng, n)))
    for i in range(2):
        (root / "evaluation" / f"e{i}.json").write_text(json.dumps(_task(rng, 2, size=(2, 5))))
    return root


def _build(arc_dir, out, *extra):
    return build_arc(["--output-dir", str(out), "--arc-dir", str(arc_dir), "--quiet", *extra])


# ----------------------------------------------------------------------------- sampler and step count


def originals_batches(stream, pid, num_batches):
    """The originals' packing of the epochs' rows: whole versions into the batch, the version that does not fit cut
    to its first rows (a random subset: the rows of a version come in random order) and the rest of it dropped."""
    batches, current, epoch = [], [], 0
    while len(batches) < num_batches:
        rows = stream.epoch_rows(epoch)
        epoch += 1
        for version in np.split(rows, np.flatnonzero(np.diff(pid[rows])) + 1):  # one version after another
            current += version[:stream.global_batch_size - len(current)].tolist()
            if len(current) == stream.global_batch_size:
                batches.append(current)
                current = []
    return batches[:num_batches]


def test_sampler_takes_all_pairs_of_one_version_per_task_per_epoch(toy_arc, tmp_path):
    meta = _build(toy_arc, tmp_path / "d", "--num-aug", "5")
    arrays = dataset_arrays(load_hrm_dataset(tmp_path / "d", "train")[0])
    group, pid = arrays["group_id"], arrays["puzzle_identifiers"]
    # train rows per version: t0 3, t1 4, t2 5 (demo + test pairs), e0 / e1 2 (demo pairs only)
    rows_per_version = {g: int((pid == pid[group == g][0]).sum()) for g in np.unique(group)}
    assert sorted(rows_per_version.values()) == [2, 2, 3, 4, 5]
    assert meta["versions_per_task"]["max"] == 6 and meta["train_num_puzzles"] == 5 * 6

    stream = BatchStream(group, len(group), 4, seed=0, sampling="groups", puzzle_identifiers=pid)
    assert stream.units == 5 and stream.num_puzzles == 30
    assert stream.mean_puzzle_examples == pytest.approx(16 / 5)
    picked = {g: set() for g in rows_per_version}
    for epoch in range(12):
        rows = stream.epoch_rows(epoch)
        assert len(rows) == len(set(rows.tolist())) == 16  # every pair of the chosen versions, once
        for g, n in rows_per_version.items():
            mine = rows[group[rows] == g]
            ids = set(pid[mine].tolist())
            assert len(ids) == 1 and len(mine) == n  # one version, all of its rows
            assert set(mine.tolist()) == set(np.flatnonzero(pid == next(iter(ids))).tolist())
            picked[g] |= ids
    assert all(len(v) > 2 for v in picked.values())  # different versions across epochs
    # Batches are packed as the originals': full, whole versions but for a cut last one whose rest is dropped.
    assert stream.cut
    assert [stream.global_batch(k).tolist() for k in range(40)] == originals_batches(stream, pid, 40)


def test_sampler_on_blank_ids_is_one_row_per_group():
    # Sudoku / maze: every augmentation is its own puzzle (blank id 0): one random row per group per epoch.
    group = np.repeat(np.arange(6), 3)
    stream = BatchStream(group, 18, 3, seed=0, sampling="groups", puzzle_identifiers=np.zeros(18, np.int32))
    assert stream.units == 6 and stream.num_puzzles == 18 and stream.rows_per_epoch == 6
    rows = stream.epoch_rows(0)
    assert sorted(group[rows].tolist()) == list(range(6))


def test_sampler_stream_is_resumable_when_versions_differ_in_size():
    # group 0: versions of 2 and 3 rows; group 1: of 1 and 2 rows -> epochs of 3 to 5 rows
    group = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    pid = np.array([1, 1, 2, 2, 2, 3, 4, 4])
    stream = BatchStream(group, 8, 3, seed=5, sampling="groups", puzzle_identifiers=pid)
    assert stream.mean_puzzle_examples == 2.0 and stream.rows_per_epoch == 4.0
    epochs = [stream.epoch_rows(e) for e in range(30)]
    assert {len(e) for e in epochs} >= {3, 5}
    batches = [stream.global_batch(k).tolist() for k in range(30)]
    assert batches == originals_batches(stream, pid, 30)
    assert len({r for b in batches for r in b}) == 8  # every row is drawn, cut versions included
    fresh = BatchStream(group, 8, 3, seed=5, sampling="groups", puzzle_identifiers=pid)  # a resumed run
    assert fresh.global_batch(25).tolist() == stream.global_batch(25).tolist()
    assert stream.global_batch(3).tolist() == batches[3]  # going back re-walks from the start


def test_steps_per_epoch_count_groups_times_mean_examples(toy_arc, tmp_path):
    _build(toy_arc, tmp_path / "d", "--num-aug", "5")
    arrays = dataset_arrays(load_hrm_dataset(tmp_path / "d", "train")[0])
    stream = BatchStream(arrays["group_id"], len(arrays["group_id"]), 4, seed=0,
                         puzzle_identifiers=arrays["puzzle_identifiers"])
    # the original: int(epochs * total_groups * mean_puzzle_examples / global_batch) = int(100 * 5 * 3.2 / 4)
    assert stream.steps_for_epochs(100) == 400
    assert stream.epoch_at(400) == pytest.approx(100)
    rows_mode = BatchStream(arrays["group_id"], 96, 4, seed=0, sampling="rows")
    assert rows_mode.steps_for_epochs(1) == 24


def test_dry_run_prints_the_step_count(toy_arc, tmp_path, capsys):
    from training.train import main as train_main

    _build(toy_arc, tmp_path / "d", "--num-aug", "5")
    rc = train_main(["--dataset", str(tmp_path / "d"), "--output_dir", str(tmp_path / "run"), "--epochs", "100",
                     "--global_batch_size", "4", "--eval_steps", "100", "--dry_run"])
    assert rc == 0
    plan = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert plan["max_steps"] == 400 and plan["groups"] == 5 and plan["puzzles"] == 30
    assert plan["steps_per_epoch"] == pytest.approx(4.0) and plan["evaluations"] == 4
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- builder


def test_one_random_pair_per_version_stays_untranslated(toy_arc, tmp_path):
    _build(toy_arc, tmp_path / "d", "--num-aug", "40")
    train = load_hrm_dataset(tmp_path / "d", "train")[0]
    arrays = dataset_arrays(train)
    at_corner = arrays["inputs"].reshape(-1, 30, 30)[:, 0, 0] >= F.ARC_COLOR_OFFSET  # grid at the top-left
    pid = arrays["puzzle_identifiers"]
    versions = np.unique(pid)
    per_version = np.array([at_corner[pid == v].sum() for v in versions])
    assert (per_version >= 1).all()  # every version keeps one pair in place ...
    # ... and only one (a translated pair lands at the corner with probability about 1/700)
    assert per_version.sum() <= len(versions) + 3
    pairs = train.select_columns(["pair_index", "is_test_pair"]).to_pandas()
    untranslated = pairs[at_corner]
    assert untranslated.pair_index.nunique() > 1  # which pair stays is random
    _build(toy_arc, tmp_path / "n", "--num-aug", "3", "--no-translation")
    flat = dataset_arrays(load_hrm_dataset(tmp_path / "n", "train")[0])["inputs"].reshape(-1, 30, 30)
    assert (flat[:, 0, 0] >= F.ARC_COLOR_OFFSET).all()


def test_num_aug_counts_augmentations_besides_the_original(toy_arc, tmp_path):
    meta = _build(toy_arc, tmp_path / "d", "--num-aug", "7", "--no-translation")
    assert meta["versions_per_task"] == {"min": 8, "mean": 8.0, "max": 8}
    assert meta["num_puzzle_identifiers"] == 1 + 5 * 8
    assert _build(toy_arc, tmp_path / "o", "--num-aug", "0")["num_puzzle_identifiers"] == 1 + 5


def test_extra_tasks_folder_and_kaggle_pair_with_bad_inputs(toy_arc, tmp_path, capsys):
    rng = np.random.default_rng(1)
    extra = tmp_path / "concept" / "corpus" / "AboveBelow"  # nested like the ConceptARC repository
    extra.mkdir(parents=True)
    (extra / "AboveBelow1.json").write_text(json.dumps(_task(rng, 2, n_test=3)))
    (extra / "Broken1.json").write_text(json.dumps({"train": [{"input": [[1, 2], [3]], "output": [[1]]}],
                                                    "test": [{"input": [[1]], "output": [[1]]}]}))
    (extra / "t0.json").write_text(json.dumps(_task(rng, 2)))  # collides with the ARC training task t0
    good = {f"K{i}": _task(rng, 2, n_test=2) for i in range(3)}
    challenges = {tid: {"train": t["train"], "test": [{"input": p["input"]} for p in t["test"]]}
                  for tid, t in good.items()}
    solutions = {tid: [p["output"] for p in t["test"]] for tid, t in good.items()}
    solutions["K1"] = solutions["K1"][:1]  # one solution for two test inputs
    del solutions["K2"]
    (tmp_path / "x_challenges.json").write_text(json.dumps(challenges))
    (tmp_path / "x_solutions.json").write_text(json.dumps(solutions))
    meta = _build(toy_arc, tmp_path / "d", "--num-aug", "2",
                  "--extra-tasks", str(tmp_path / "concept" / "corpus"),
                  "--extra-tasks", str(tmp_path / "x_challenges.json"))  # solutions found next to it
    err = capsys.readouterr().err
    assert "skipped extra task Broken1 train pair 0 input: ragged grid" in err
    assert "skipped extra task t0: the id is already taken" in err
    assert "skipped extra task K1: 1 solutions for 2 test inputs" in err
    assert "skipped extra task K2: no entry in solutions file x_solutions.json" in err
    assert "skipped 4 malformed or conflicting task(s)" in err
    # the good tasks are all there, with every pair in train
    assert set(meta["training_task_ids"]) == {"t0", "t1", "t2", "AboveBelow1", "K0"}
    assert [s["tasks"] for s in meta["task_sources"]] == [3, 2, 1, 1] and meta["num_tasks"] == 7
    assert len(meta["skipped_tasks"]) == 4
    train = load_hrm_dataset(tmp_path / "d", "train")[0].select_columns(["task_id", "is_test_pair"]).to_pandas()
    assert train[train.task_id == "AboveBelow1"].is_test_pair.sum() == 3 * 3  # 3 test pairs x 3 versions
    card = (tmp_path / "d" / "README.md").read_text()
    assert "7 tasks in all" in card and "ConceptARC" in card and "Broken1" in card

    # a solutions file that is not the challenges' own, and a folder given a solutions file: the build stops
    (tmp_path / "y_solutions.json").write_text(json.dumps({"other": [[[1]]]}))
    capsys.readouterr()  # drop the loading progress bars above
    for spec, msg in (([str(tmp_path / "x_challenges.json"), str(tmp_path / "y_solutions.json")],
                       "y_solutions.json matches none of the 3 tasks"),
                      ([str(extra), str(tmp_path / "y_solutions.json")], "is a folder")):
        rc = run_cli(build_arc, ["--output-dir", str(tmp_path / "z"), "--arc-dir", str(toy_arc), "--quiet",
                                 "--extra-tasks", *spec])
        lines = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(lines) == 1 and msg in lines[0], lines


@pytest.mark.skipif(not (CONCEPTARC / "arc-agi_concept_challenges.json").is_file(), reason="no ConceptARC copy")
def test_arc_agi_1_with_conceptarc_is_960_tasks(tmp_path):
    meta = build_arc(["--output-dir", str(tmp_path / "d"), "--source", "arc-agi-1", "--num-aug", "0", "--quiet",
                      "--allow-demo-variants", "--no-translation",
                      "--extra-tasks", str(CONCEPTARC / "arc-agi_concept_challenges.json")])
    assert [s["tasks"] for s in meta["task_sources"]] == [400, 400, 160]
    assert meta["num_tasks"] == 960 and meta["train_num_groups"] == 960 and meta["skipped_tasks"] == []
    card = (tmp_path / "d" / "README.md").read_text()
    assert "960 tasks in all" in card and "| 160 |" in card and "arc-agi_concept_solutions.json" in card


# ----------------------------------------------------------------------------- voting


def test_undecodable_predictions_vote_as_the_empty_grid():
    assert A.grid_to_str(A.invert_arc_version(np.zeros(900, np.uint8), 3, np.arange(10))) == ""
    ranked = A.rank_candidates(["", "", "1", "2|3"], [0.2, 0.4, 0.9, 0.1])
    assert ranked == [("", 2, pytest.approx(0.3)), ("1", 1, 0.9), ("2|3", 1, 0.1)]
    res = A.score_tasks(["", "", "1"], ["1"] * 3, ["a"] * 3, [0] * 3, [0.9, 0.9, 0.1], k_values=(1, 2))
    assert res["per_task"]["a"]["ranks"] == [2] and res["per_task"]["a"]["top"] == [""]
    assert (res["pass@1"], res["pass@2"]) == (0.0, 1.0)


def test_empty_grid_takes_a_top_k_slot_in_arc_scores():
    from training.evaluation import arc_scores

    answer = np.array([[1, 2], [3, 4]])
    right = F.encode_arc_grid(answer)
    empty = np.zeros(900, np.uint8)
    wrong = F.encode_arc_grid(np.array([[5]]))
    preds = np.stack([empty, empty, empty, wrong, wrong, right])
    labels = np.stack([right] * 6)
    conf = np.array([0.1, 0.1, 0.1, 0.9, 0.9, 0.99])
    ident = [np.arange(10)] * 6
    res = arc_scores(preds, labels, conf, ["t"] * 6, [0] * 6, [0] * 6, ident, k_values=(1, 2, 3))
    # votes: 0x0 grid 3, [[5]] 2, the answer 1 -> the answer is third
    assert res["per_task"]["t"]["ranks"] == [3] and res["per_task"]["t"]["top"] == [""]
    assert (res["pass@1"], res["pass@2"], res["pass@3"]) == (0.0, 0.0, 1.0)


# ----------------------------------------------------------------------------- per-version ids in hrm-solve


def _tiny_arc_model(meta, model_type="hrm"):
    from modeling_hrm import MODEL_CLASSES

    config_class, model_class = MODEL_CLASSES[model_type]
    torch.manual_seed(0)
    sizes = dict(hidden_size=32, num_heads=2, expansion=2.0, L_layers=1, H_cycles=1, L_cycles=1, puzzle_emb_ndim=32,
                 halt_max_steps=2)
    if model_type == "hrm":
        sizes["H_layers"] = 1
    return model_class(config_class.from_dataset_metadata(meta, **sizes)).eval()


@pytest.mark.parametrize("model_type", ["hrm", "trm"])
def test_solve_arc_task_gives_each_version_its_dataset_id(toy_arc, tmp_path, model_type):
    from modeling_hrm.solve import PuzzleError, solve_arc_task

    meta = _build(toy_arc, tmp_path / "d", "--num-aug", "5")
    model = _tiny_arc_model(meta, model_type)
    seen = {}
    real_solve = model.solve

    def spy(input_ids, puzzle_identifiers=None, **kw):
        seen["inputs"], seen["ids"] = input_ids.clone(), puzzle_identifiers.clone()
        return real_solve(input_ids, puzzle_identifiers=puzzle_identifiers, **kw)

    model.solve = spy
    versions = A.task_versions_from_metadata(meta, "e0")
    assert len(versions) == 6 and versions[0][0] == 0 and versions[0][1].tolist() == list(range(10))
    task = json.loads((toy_arc / "evaluation" / "e0.json").read_text())
    (result,) = solve_arc_task(model, task, versions=versions, early_exit=False)
    assert seen["ids"].tolist() == [pid for _, _, pid in versions]
    # each version's input is exactly the dataset's test row with that puzzle id
    test = dataset_arrays(load_hrm_dataset(tmp_path / "d", "test")[0])
    for row, pid in enumerate(seen["ids"].tolist()):
        (j,) = np.flatnonzero(test["puzzle_identifiers"] == pid)
        assert seen["inputs"][row].tolist() == test["inputs"][j].tolist()
    assert result.attempts and result.answer.ndim == 2

    with pytest.raises(PuzzleError, match="names one trained version"):
        solve_arc_task(model, task, puzzle_identifier=versions[1][2])
    (alone,) = solve_arc_task(model, task, puzzle_identifier=versions[0][2], augment=False)
    assert seen["ids"].tolist() == [versions[0][2]]
    with pytest.raises(ValueError, match="'nope' has no trained versions"):
        A.task_versions_from_metadata(meta, "nope")


# ----------------------------------------------------------------------------- the whole path


def test_arc_smoke_recipe_trains_scores_and_solves(toy_arc, tmp_path, capsys):
    """What training/configs/arc_smoke.yaml runs, scaled down: train a tiny model a few steps with the original
    sampler, score pass@1/2 with voting (hrm-evaluate), solve a task with its trained versions (hrm-solve)."""
    from modeling_hrm.solve import main as solve_main
    from training.hrm_evaluate import main as evaluate_main
    from training.train import main as train_main

    data, run = tmp_path / "d", tmp_path / "run"
    _build(toy_arc, data, "--num-aug", "3")
    rc = train_main(["--config", str(REPO / "training/configs/arc_smoke.yaml"), "--dataset", str(data),
                     "--output_dir", str(run), "--max_steps", "3", "--global_batch_size", "8",
                     "--set", "model.hidden_size=32", "--set", "model.puzzle_emb_ndim=32",
                     "--disable_tqdm", "true", "--eval_max_examples", "8"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 3

    rc = evaluate_main(["--model", str(run / "model"), "--dataset", str(data), "--output-dir", str(tmp_path / "ev"),
                        "--num-examples", "0", "--scaling-steps", "1,2"])
    assert rc == 0
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["arc"]["num_tasks"] == 2 and res["arc"]["num_test_inputs"] == 2
    for k in (1, 2):
        assert 0.0 <= res[f"pass@{k}"] <= 1.0 and res[f"pass@{k}"] in (0.0, 0.5, 1.0)
    assert res["pass@1"] <= res["pass@2"]
    capsys.readouterr()

    rc = solve_main(["--model", str(run / "model"), "--arc", str(toy_arc / "evaluation" / "e1.json"),
                     "--dataset", str(data), "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    result = json.loads(out.out)  # one answer per test input
    assert result["kind"] == "arc" and len(result["answer"]) == 1 and result["correct"][0] in (True, False)
    assert isinstance(result["answer"][0], list)  # a grid (the 0x0 grid [] when undecodable)
    # a task the dataset has no versions of: one line, exit 2
    rc = solve_main(["--model", str(run / "model"), "--arc", str(toy_arc / "evaluation" / "e1.json"),
                     "--dataset", str(data), "--task-id", "nope"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "'nope' has no trained versions" in err[0]


@pytest.mark.parametrize("recipe", ["arc_agi_1", "arc_agi_2", "trm_arc_agi_1", "trm_arc_agi_2", "arc_smoke"])
def test_arc_recipes_are_valid_runs(toy_arc, tmp_path, capsys, recipe):
    from training.train import main as train_main

    _build(toy_arc, tmp_path / "d", "--num-aug", "1")
    # The paper recipes name their ARC release and their step count (the original's, on the paper's build): a toy
    # build has no named release, and its step count is asked for by epochs.
    rc = train_main(["--config", str(REPO / f"training/configs/{recipe}.yaml"), "--dataset", str(tmp_path / "d"),
                     "--output_dir", str(tmp_path / "run"), "--global_batch_size", "4", "--dry_run",
                     "--dataset_release", "null", "--max_steps", "null"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    plan = json.loads(captured.out.strip().splitlines()[-1])
    assert plan["groups"] == 5 and plan["max_steps"] == int(plan["epochs"] * 16 / 4)  # 16 rows per epoch


# ----------------------------------------------------------------------------- a smaller canvas (--canvas N)


def _arrays_digest(folder) -> str:
    import hashlib

    digest = hashlib.sha256()
    for split in ("train", "test"):
        arrays = dataset_arrays(load_hrm_dataset(folder, split)[0])
        for key in ("inputs", "labels", "puzzle_identifiers"):
            digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def test_default_canvas_build_is_unchanged(toy_arc, tmp_path):
    """The default layout (30x30) is pinned: this digest is the rows the builder wrote before --canvas existed."""
    meta = _build(toy_arc, tmp_path / "d", "--num-aug", "3")
    assert (meta["seq_len"], meta["grid_height"], meta["grid_width"]) == (900, 30, 30)
    assert _arrays_digest(tmp_path / "d") == DEFAULT_LAYOUT_DIGEST
    assert _build(toy_arc, tmp_path / "c30", "--num-aug", "3", "--canvas", "30")["puzzle_identifier_names"] == \
        meta["puzzle_identifier_names"] and _arrays_digest(tmp_path / "c30") == DEFAULT_LAYOUT_DIGEST


DEFAULT_LAYOUT_DIGEST = "adee7439bc5ad014bc5b8f9b8daf1f55d3aab62504a651a87be8b4c9c8e33404"


def test_small_canvas_build_round_trips_grids(toy_arc, tmp_path):
    """--canvas 6 (toy grids are at most 3x5): every row is a 6x6 canvas; test rows decode and invert exactly to the
    task's grids, train rows hold the pair translated inside the 6x6 square with its EOS border."""
    meta = _build(toy_arc, tmp_path / "d", "--num-aug", "3", "--canvas", "6")
    assert (meta["seq_len"], meta["grid_height"], meta["grid_width"]) == (36, 6, 6)
    tasks = {p.stem: json.loads(p.read_text()) for p in toy_arc.rglob("*.json")}
    translated = 0
    for split in ("train", "test"):
        data = load_hrm_dataset(tmp_path / "d", split)[0]
        arrays = dataset_arrays(data)
        assert arrays["inputs"].shape[1] == arrays["labels"].shape[1] == 36
        for j, row in enumerate(data.select_columns(["task_id", "pair_index", "is_test_pair", "dihedral",
                                                     "color_perm"])):
            task = tasks[row["task_id"]]
            pair = task["test" if row["is_test_pair"] else "train"][row["pair_index"]]
            for key, tokens in (("input", arrays["inputs"][j]), ("output", arrays["labels"][j])):
                r0, c0, h, w = F.arc_grid_location(tokens)
                translated += (r0, c0) != (0, 0)
                moved = np.roll(tokens.reshape(6, 6), (-r0, -c0), axis=(0, 1))  # back to the corner (pads wrap)
                grid = F.decode_arc_grid(moved, strict=True) if split == "test" else F.decode_arc_grid(moved)
                assert F.invert_arc_version(grid, row["dihedral"], row["color_perm"]).tolist() == pair[key]
            if split == "test":
                assert F.arc_grid_location(arrays["inputs"][j])[:2] == (0, 0)  # test rows are not translated
    assert translated > 0


def test_canvas_must_hold_every_grid_with_its_border(toy_arc, tmp_path, capsys):
    """The toy set's longest side is 5: --canvas 6 builds, --canvas 5 (no room for the EOS border) and 31 do not."""
    _build(toy_arc, tmp_path / "ok", "--num-aug", "0", "--canvas", "6")
    capsys.readouterr()
    for canvas, message in (("5", "--canvas 5 is too small: task e0 has a 2x5 grid, which needs a canvas of at "
                                  "least 6"), ("31", "--canvas must be 2..30, got 31")):
        rc = run_cli(build_arc, ["--output-dir", str(tmp_path / canvas), "--arc-dir", str(toy_arc), "--quiet",
                                 "--canvas", canvas])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and message in err[0], err
        assert not (tmp_path / canvas / "hrm_dataset.json").exists()


def test_small_canvas_model_solves_through_the_pipeline(toy_arc, tmp_path):
    """A canvas-6 model: the pipeline and solve_arc_task encode a task exactly as the build's test rows, and decode
    6x6 predictions back to the task's frame (a model answering the build's labels is right on every version)."""
    from transformers import pipeline

    import modeling_hrm  # noqa: F401  (registers the pipeline)
    from modeling_hrm.solve import PuzzleError, solve_arc_task

    meta = _build(toy_arc, tmp_path / "d", "--num-aug", "3", "--canvas", "6")
    model = _tiny_arc_model(meta)
    test = dataset_arrays(load_hrm_dataset(tmp_path / "d", "test")[0])
    label_of = {(int(pid), row.tobytes()): test["labels"][j]
                for j, (pid, row) in enumerate(zip(test["puzzle_identifiers"], test["inputs"]))}
    real_solve, seen = model.solve, []

    def oracle(input_ids, puzzle_identifiers=None, **kw):  # the model's outputs, with the build's labels as answers
        res = real_solve(input_ids, puzzle_identifiers=puzzle_identifiers, **kw)
        rows = [(int(p), r.numpy().astype(np.uint8).tobytes()) for p, r in zip(puzzle_identifiers, input_ids)]
        seen.extend(rows)
        res.predictions = torch.as_tensor(np.stack([label_of[r] for r in rows]).astype(np.int64))
        return res

    model.solve = oracle
    task = json.loads((toy_arc / "evaluation" / "e0.json").read_text())
    versions = A.task_versions_from_metadata(meta, "e0")
    out = pipeline("puzzle-solving", model=model)(task, arc_versions=versions)
    assert out["correct"] == [True] and out["answer"] == [task["test"][0]["output"]]
    assert len(seen) == len(versions) and all(r in label_of for r in seen)  # every row is the build's test row
    (result,) = solve_arc_task(model, task, versions=versions)
    assert result.answer.tolist() == task["test"][0]["output"]
    big = {"train": task["train"], "test": [{"input": [[1] * 6] * 2}]}  # 6 wide: no room for the EOS column
    with pytest.raises(PuzzleError, match=r"an ARC grid of 2x6 needs a canvas of at least 7x7 \(seq_len 49\), but "
                                          r"this model's canvas is 6x6 \(seq_len 36\)"):
        pipeline("puzzle-solving", model=model)(big)
    with pytest.raises(PuzzleError, match="needs a canvas of at least 7x7"):
        solve_arc_task(model, big)
