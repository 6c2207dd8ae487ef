"""Model and dataset cards: they name the model and variant, the dataset by Hub id or task and size (never a
folder name), carry the build command and one model-index entry per evaluated split; the "How to use" snippet
of a generated card runs as written against a saved model."""

import contextlib
import io
import re

import pytest
import torch
from huggingface_hub import ModelCard

from modeling_hrm import HRMConfig, HRMForPuzzleSolving, TRMConfig, TRMForPuzzleSolving
from training.hub import build_model_card, write_model_card

TINY = dict(hidden_size=16, num_heads=2, L_layers=1, H_cycles=1, L_cycles=1, puzzle_emb_ndim=16, halt_max_steps=2)
RESULTS = {"exact_accuracy": 0.75, "token_accuracy": 0.9, "mean_steps": 3.5, "q_halt_accuracy": 0.8,
           "num_examples": 100.0}


def sudoku_meta(n=9, rows=(1000, 400)):
    return {"task": "sudoku", "grid_height": n, "grid_width": n, "num_rows": {"train": rows[0], "test": rows[1]},
            "build_command": f"python -m dataset_scripts.build_sudoku_dataset --size {n} --output-dir data"}


def hrm(vocab_size=11, seq_len=81, **overrides):
    torch.manual_seed(0)
    return HRMForPuzzleSolving(HRMConfig(vocab_size=vocab_size, seq_len=seq_len, H_layers=1, **{**TINY, **overrides}))


def test_local_dataset_is_named_by_task_and_size_with_a_model_index_entry_per_split():
    card = build_model_card(hrm().config, dataset_meta=sudoku_meta(), dataset_id="data",
                            eval_results={"test": RESULTS, "train": {**RESULTS, "exact_accuracy": 0.99}}, step=500)
    text = str(card)
    assert "`data`" not in text and "(data)" not in text  # the folder name says nothing
    assert "a locally built 9×9 Sudoku dataset (1,000 train rows, 400 test rows)" in text
    assert "python -m dataset_scripts.build_sudoku_dataset --size 9 --output-dir data" in text
    assert "Hierarchical Reasoning Model" in text and "q_halt > q_continue" in text
    results = ModelCard(text).data.eval_results
    assert {(r.dataset_split, r.metric_type) for r in results} == {
        (split, metric) for split in ("test", "train")
        for metric in ("exact_match", "accuracy", "mean_act_steps", "q_halt_accuracy")}
    assert {r.dataset_type for r in results} == {"hrm-9x9-sudoku"} and {r.dataset_name for r in results} == {
        "9×9 Sudoku (local build)"}
    exact = {r.dataset_split: r.metric_value for r in results if r.metric_type == "exact_match"}
    assert exact == {"test": 0.75, "train": 0.99}


def test_hub_dataset_is_linked_and_a_flat_result_is_the_test_split():
    card = build_model_card(hrm().config, dataset_meta=sudoku_meta(), dataset_id="someone/sudoku-extreme-1k",
                            eval_results=RESULTS, repo_id="someone/hrm-sudoku")
    text = str(card)
    assert "[`someone/sudoku-extreme-1k`](https://huggingface.co/datasets/someone/sudoku-extreme-1k)" in text
    assert card.data.datasets == ["someone/sudoku-extreme-1k"]
    assert {r.dataset_type for r in card.data.eval_results} == {"someone/sudoku-extreme-1k"}
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}
    assert 'pipeline("puzzle-solving", model="someone/hrm-sudoku")' in text


@pytest.mark.parametrize("mlp_t, no_act_continue, variant, act", [(True, True, "mlp_t", "q_halt > 0"),
                                                                  (False, False, "attention", "q_halt > q_continue")])
def test_trm_card_names_model_variant_and_act_mode(mlp_t, no_act_continue, variant, act):
    config = TRMConfig(vocab_size=11, seq_len=81, mlp_t=mlp_t, pos_encodings="none" if mlp_t else "rope",
                       no_ACT_continue=no_act_continue, puzzle_emb_len=1, **TINY)
    text = str(build_model_card(config, dataset_meta=sudoku_meta(), dataset_id="data"))
    assert f"**Tiny Recursive Model** (TRM, Jolicoeur-Martineau 2025" in text and f"{variant} variant" in text
    assert act in text and "jolicoeurmartineau2025trm" in text and "Hierarchical Reasoning Model" not in text
    assert f"trm-{variant}" in ModelCard(text).data.tags


def how_to_use(card_text: str) -> str:
    section = card_text.split("## How to use", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize("kind, model_kwargs, meta", [
    ("sudoku", dict(vocab_size=6, seq_len=16), sudoku_meta(4)),
    ("maze", dict(vocab_size=6, seq_len=35), {"task": "maze", "grid_height": 7, "grid_width": 5}),
    ("arc", dict(vocab_size=12, seq_len=900), {"task": "arc", "source": "arc-agi-1", "split_mode": "heldout"}),
])
def test_the_cards_usage_snippet_runs_as_written(tmp_path, kind, model_kwargs, meta):
    model = hrm(**model_kwargs)
    model.save_pretrained(tmp_path)
    card = write_model_card(tmp_path, model.config, dataset_meta=meta, dataset_id="data", model_path=str(tmp_path))
    code = how_to_use(card.read_text())
    assert 'pipeline("puzzle-solving"' in code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue().splitlines()
    assert len(printed) >= 2, out.getvalue()
    last = printed[-1].split()
    assert int(last[-2]) in (1, 2) and 0.0 < float(last[-1]) < 1.0  # steps and q_halt_confidence
    if kind != "arc":
        assert last[0] in ("True", "False") and len(last) == 3  # `valid`: Sudoku and maze answers are checked


# ------------------------------------------------------------------------------------------------ dataset cards
def test_dataset_card_states_splits_source_citation_and_build_command(tmp_path):
    from dataset_scripts.build_sudoku_dataset import main
    from dataset_scripts.common import CARD_PLACEHOLDER, card_for_repo

    out = tmp_path / "data"
    main(["--output-dir", str(out), "--size", "4", "--num-train", "12", "--num-test", "4", "--num-aug", "2",
          "--quiet"])
    card = (out / "README.md").read_text()
    assert "pretty_name: HRM Sudoku 4x4" in card and "# HRM Sudoku 4x4" in card
    splits = card.split("## Splits", 1)[1].split("##", 1)[0]
    assert "`train`: 12 puzzles to learn from, each followed by augmented variants" in splits
    assert "`test`: 4 held-out puzzles, never augmented" in splits
    assert "--num-train 12 --num-test 4 --num-aug 2" in card.split("## Build command", 1)[1]
    citation = card.split("## Citation", 1)[1]
    assert "generated by the `hrm` project's builder" in citation and "wang2025hrm" in citation
    assert f'load_dataset("{CARD_PLACEHOLDER}")' in card
    card_for_repo(out, "someone/hrm-sudoku-4x4")  # what a push does first
    assert 'load_dataset("someone/hrm-sudoku-4x4")' in (out / "README.md").read_text()


def test_dataset_citation_by_source():
    from dataset_scripts.common import dataset_citation

    arc = dataset_citation({"task": "arc", "source": "arc-agi-2", "task_sources": [{"name": "ConceptARC"}]})
    assert all(key in arc for key in ("chollet2019measure", "chollet2025arcagi2", "moskvichev2023conceptarc"))
    sudoku = dataset_citation({"task": "sudoku", "source": "csv", "source_detail": "data/sudoku-extreme"})
    assert "data/sudoku-extreme" in sudoku and "Sudoku-Extreme" in sudoku and "wang2025hrm" in sudoku


def test_a_folder_to_push_must_carry_the_code_its_config_names(tmp_path):
    from training.hub import check_model_folder

    hrm(vocab_size=6, seq_len=16).save_pretrained(tmp_path)
    (tmp_path / "README.md").write_text("card")
    check_model_folder(tmp_path)
    (tmp_path / "pipeline_puzzle_solving.py").unlink()
    with pytest.raises(ValueError, match="missing pipeline_puzzle_solving.py"):
        check_model_folder(tmp_path)
