"""Bad input by rule (issue 20): one validation rule per boundary, applied wherever that boundary is crossed, so new
bad values are caught without being listed. Each table below holds new cases of one rule on every surface that
crosses it (the Python API and the pipeline, hrm-solve, hrm-evaluate, train.py, the converter, resume, the metrics);
each case asserts the exit code or exception type, a one-line message naming the problem, no traceback, and that
nothing already written changed.

Rules (dataset_scripts/validation.py and where each is applied: docs/CONTRACTS.md "Bad input"):
- puzzle text: an explicit alphabet (ASCII digits, the documented blanks and layout; maze characters); anything
  else is named with its Unicode name, so a look-alike cannot shift an answer;
- typed options: booleans are booleans, integers integers, numbers finite and in range, sequences sequences;
- configs: no key given twice (YAML and JSON), every key known, YAML values of the option's type;
- files: the weights agree with the config in shape and presence of every tensor, wherever a folder is read;
  the converter never changes the architecture it converts;
- run state: a resume checks the data fingerprint, the model config and the trajectory settings;
- Hub ids: huggingface_hub's rule, checked before any call;
- resources: a request whose memory estimate exceeds what is free is refused (or split into batches that fit).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_bad_input import TINY, assert_cli_error, assert_raises, run_main, write_original_run

from dataset_scripts.validation import OptionTypeError
from modeling_hrm import HRMConfig, HRMForPuzzleSolving, TRMConfig, TRMForPuzzleSolving
from modeling_hrm.loading import load_pretrained_model
from modeling_hrm.pipeline_puzzle_solving import PuzzleError
from modeling_hrm.search import SearchSetting

GOOD_SUDOKU = "1200340000000000"
GOOD_MAZE = "#####\n#S  #\n# # #\n#  G#\n#####\n"
HUGE = 10**12  # far beyond any machine's memory


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: what "nothing already written changed" compares."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def solve_cli(argv):
    from modeling_hrm.solve import main

    return main(argv)


def evaluate_cli(argv):
    from training.hrm_evaluate import main

    return main(argv)


def train_cli(argv):
    from training.train import main

    return main(argv)


def convert_cli(argv):
    from modeling_hrm.convert_original_checkpoint import main

    return main(argv)


def build_sudoku(argv):
    from dataset_scripts.build_sudoku_dataset import main
    from dataset_scripts.common import run_cli

    return run_cli(main, argv)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_input_rules")


@pytest.fixture(scope="module")
def models(work) -> dict[str, Path]:
    """Saved folders: a 4x4 Sudoku model, a 5x5 maze model, and copies whose config and weights disagree."""
    torch.manual_seed(0)
    p = {}
    for name, model in (("sudoku", HRMForPuzzleSolving(HRMConfig(**TINY))),
                        ("maze", HRMForPuzzleSolving(HRMConfig(**dict(TINY, seq_len=25)))),
                        ("learned", HRMForPuzzleSolving(HRMConfig(**TINY, pos_encodings="learned"))),
                        ("trm-mlp", TRMForPuzzleSolving(TRMConfig(**dict(TINY, puzzle_emb_len=1, mlp_t=True,
                                                                            pos_encodings="none"))))):
        p[name] = work / f"model-{name}"
        model.save_pretrained(p[name])

    def edited(name, source, edit_text):
        p[name] = work / f"model-{name}"
        shutil.copytree(p[source], p[name])
        file = p[name] / "config.json"
        file.write_text(edit_text(file.read_text()))

    def set_key(key, value):
        return lambda text: json.dumps({**json.loads(text), key: value})

    # seq_len no longer agrees with the learned positions / the sequence MLP saved in the weights
    edited("learned-seq-len", "learned", set_key("seq_len", 36))
    edited("trm-mlp-seq-len", "trm-mlp", set_key("seq_len", 36))
    edited("puzzle-width", "sudoku", set_key("puzzle_emb_ndim", 0))  # the weights hold a puzzle table
    edited("typo-key", "sudoku", lambda text: text.replace('"hidden_size"', '"hiden_size"'))
    edited("duplicate-key", "sudoku", lambda text: text.replace('{', '{"hidden_size": 64, ', 1))
    return p


# ---------------------------------------------------------------------------------------------------------
# Rule: puzzle text has an explicit alphabet; anything else is named (Unicode look-alikes, invisible characters)
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def solvers(models):
    from transformers import pipeline

    return {kind: pipeline("puzzle-solving", model=load_pretrained_model(models[kind]), device="cpu")
            for kind in ("sudoku", "maze")}


def _swap(text: str, index: int, char: str) -> str:
    return text[:index] + char + text[index + 1:]


PUZZLE_TEXT_CASES = [  # (id, solver, puzzle, the character as the message names it)
    ("sudoku-full-width-digits", "sudoku", "１２００３４００００００００００", r"'１' \(FULLWIDTH DIGIT ONE, U\+FF11\)"),
    ("sudoku-one-full-width-digit", "sudoku", _swap(GOOD_SUDOKU, 1, "２"), r"FULLWIDTH DIGIT TWO, U\+FF12"),
    ("sudoku-arabic-indic-digit", "sudoku", _swap(GOOD_SUDOKU, 1, "٢"), r"ARABIC-INDIC DIGIT TWO, U\+0662"),
    ("sudoku-devanagari-digit", "sudoku", _swap(GOOD_SUDOKU, 4, "३"), r"DEVANAGARI DIGIT THREE, U\+0969"),
    ("sudoku-mathematical-bold-digit", "sudoku", _swap(GOOD_SUDOKU, 0, "𝟏"), r"MATHEMATICAL BOLD DIGIT ONE"),
    ("sudoku-superscript-digit", "sudoku", _swap(GOOD_SUDOKU, 1, "²"), r"SUPERSCRIPT TWO, U\+00B2"),
    ("sudoku-fullwidth-full-stop-as-blank", "sudoku", _swap(GOOD_SUDOKU, 2, "．"), r"FULLWIDTH FULL STOP"),
    ("sudoku-no-break-space-as-layout", "sudoku", GOOD_SUDOKU[:4] + "\u00a0" + GOOD_SUDOKU[4:],
     r"NO-BREAK SPACE, U\+00A0"),
    ("sudoku-zero-width-space", "sudoku", GOOD_SUDOKU[:8] + "\u200b" + GOOD_SUDOKU[8:], r"ZERO WIDTH SPACE, U\+200B"),
    ("sudoku-ideographic-space", "sudoku", GOOD_SUDOKU[:4] + "\u3000" + GOOD_SUDOKU[4:], r"IDEOGRAPHIC SPACE"),
    ("maze-cyrillic-start", "maze", GOOD_MAZE.replace("S", "С"), r"CYRILLIC CAPITAL LETTER ES, U\+0421"),
    ("maze-full-width-wall", "maze", _swap(GOOD_MAZE, 0, "＃"), r"FULLWIDTH NUMBER SIGN, U\+FF03"),
    ("maze-tab-for-open-cell", "maze", GOOD_MAZE.replace("S  #", "S \t#"), r"'\\t' \(a control character, U\+0009\)"),
    ("maze-byte-order-mark", "maze", "\ufeff" + GOOD_MAZE, r"ZERO WIDTH NO-BREAK SPACE, U\+FEFF"),
]


@pytest.mark.parametrize("name,kind,puzzle,pattern", PUZZLE_TEXT_CASES, ids=[c[0] for c in PUZZLE_TEXT_CASES])
def test_puzzle_text_alphabet(solvers, name, kind, puzzle, pattern):
    text = assert_raises(PuzzleError, pattern, solvers[kind], puzzle)
    assert re.search(r"unknown (Sudoku symbol|maze character)", text)


def test_puzzle_text_alphabet_on_the_command_line(models, work):
    maze = work / "cyrillic-maze.txt"
    maze.write_text(GOOD_MAZE.replace("S", "С"))
    assert_cli_error(solve_cli, ["--model", models["sudoku"], "--sudoku", "１２００３４００００００００００"],
                     r"FULLWIDTH DIGIT ONE")
    assert_cli_error(solve_cli, ["--model", models["maze"], "--maze", maze], r"CYRILLIC CAPITAL LETTER ES")


def test_the_documented_alphabet_is_accepted(solvers):
    """What the documentation accepts still parses: ASCII digits, '.', '0', '_' blanks, and layout characters."""
    pretty = "1 2 | _ . \n3,4 | 0 0\n-----+-----\n. . | . .\n. . | . ."
    answer = solvers["sudoku"](pretty)["answer"]
    assert re.sub(r"[0-9.]", "x", answer) == re.sub(r"[0-9._]", "x", pretty)  # layout kept, one cell per cell
    assert solvers["maze"](GOOD_MAZE)["kind"] == "maze"


# ---------------------------------------------------------------------------------------------------------
# Rule: a puzzle has a type the pipeline documents; other values are named, not "got object values"
# ---------------------------------------------------------------------------------------------------------
PUZZLE_TYPE_CASES = [
    ("none", None, r"a puzzle must be text, .* got None"),
    ("bytes", GOOD_SUDOKU.encode(), r"must be text, not bytes: decode it first"),
    ("bytearray", bytearray(GOOD_SUDOKU.encode()), r"not bytes"),
    ("integer", 1200340000000000, r"got int 1200340000000000"),
    ("set-of-strings", {GOOD_SUDOKU}, r"got a set"),
    ("grid-with-a-bool", [[True, 2, 0, 0], [3, 4, 0, 0], [0] * 4, [0] * 4], r"row 1, column 1 holds the boolean True"),
    ("grid-with-a-string-digit", [[1, "2", 0, 0], [3, 4, 0, 0], [0] * 4, [0] * 4],
     r"row 1, column 2 holds the string '2'"),
    ("grid-with-nan", np.array([[1, 2, 0, 0], [3, 4, 0, 0], [0] * 4, [0, 0, 0, np.nan]]),
     r"row 4, column 4 holds float nan"),
    ("grid-with-a-fraction", [[1.5, 2, 0, 0], [3, 4, 0, 0], [0] * 4, [0] * 4], r"whole numbers .* holds float 1\.5"),
    ("grid-ragged", [[1, 2, 0, 0], [3, 4, 0], [0] * 4, [0] * 4], r"ragged grid: its rows have \[3, 4\] cells"),
    ("grid-huge-number", [[10**30, 2, 0, 0], [3, 4, 0, 0], [0] * 4, [0] * 4], r"whole numbers 0\.\.9 .* holds int"),
    ("arc-task-repeats-test", '{"train": [], "test": [{"input": [[1]]}], "test": [{"input": [[2]]}]}',
     r"invalid ARC task: the task: key 'test' is given twice"),
]


@pytest.mark.parametrize("name,puzzle,pattern", PUZZLE_TYPE_CASES, ids=[c[0] for c in PUZZLE_TYPE_CASES])
def test_puzzle_types_are_named(solvers, name, puzzle, pattern):
    text = assert_raises(PuzzleError, pattern, solvers["sudoku"], puzzle)
    assert "object values" not in text


# ---------------------------------------------------------------------------------------------------------
# Rule: typed options. Booleans are booleans ("false" is not true), integers integers, sequences sequences
# ---------------------------------------------------------------------------------------------------------
PIPELINE_OPTION_CASES = [  # (id, options, exception type, message)
    ("early-exit-string-false", dict(early_exit="false"), TypeError,
     r"early_exit must be True or False, got the string 'false'"),
    ("early-exit-integer", dict(early_exit=0), TypeError, r"early_exit must be True or False, got int 0"),
    ("return-trace-string", dict(return_trace="yes"), TypeError, r"return_trace must be True or False"),
    ("augment-string", dict(augment="no"), TypeError, r"augment must be True or False, got the string 'no'"),
    ("puzzle-id-string", dict(puzzle_id="0"), TypeError, r"puzzle_id must be an integer, got the string '0'"),
    ("puzzle-id-float", dict(puzzle_id=1.0), TypeError, r"puzzle_id must be an integer, got float 1\.0"),
    ("arc-versions-string", dict(arc_versions="0,1"), TypeError, r"arc_versions must be a list or tuple"),
    ("num-candidates-beyond-memory", dict(num_candidates=HUGE), ValueError,
     r"num_candidates=1000000000000 needs about .* but about .* is free; lower num_candidates"),
    ("search-symmetries-number", dict(search={"breadth": 2, "kind": "symmetry", "symmetries": 5}), ValueError,
     r"search symmetries must be text such as 'rows\+cols', got int 5"),
]


@pytest.mark.parametrize("name,options,exc,pattern", PIPELINE_OPTION_CASES, ids=[c[0] for c in PIPELINE_OPTION_CASES])
def test_pipeline_typed_options(solvers, name, options, exc, pattern):
    assert_raises(exc, pattern, solvers["sudoku"], GOOD_SUDOKU, **options)
    assert_raises(ValueError, pattern, solvers["sudoku"], GOOD_SUDOKU, **options)  # either handler catches it


def test_wrong_types_are_both_type_and_value_errors():
    from dataset_scripts.validation import check_bool, check_int, check_number, check_sequence

    for check, value in ((check_bool, "true"), (check_int, 2.0), (check_number, "0.5"), (check_sequence, "12")):
        with pytest.raises(OptionTypeError) as info:
            check(value, "x")
        assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert check_bool(np.bool_(False), "x") is False and check_int(np.int64(3), "x", minimum=1) == 3
    assert_raises(ValueError, r"x must be a finite number, got inf", check_number, float("inf"), "x")


ARC_PLAN_CASES = [  # (id, arc_plan arguments after the config, message): hrm-solve's solve_arc_task plans the same way
    ("augment-string", dict(augment="false"), r"augment must be True or False, got the string 'false'"),
    ("puzzle-id-string", dict(puzzle_id="1", augment=False), r"puzzle_id must be an integer, got the string '1'"),
    ("versions-string", dict(arc_versions="0"), r"arc_versions must be a list or tuple, got the string '0'"),
]


@pytest.mark.parametrize("name,kwargs,pattern", ARC_PLAN_CASES, ids=[c[0] for c in ARC_PLAN_CASES])
def test_arc_plan_typed_options(name, kwargs, pattern):
    from modeling_hrm.pipeline_puzzle_solving import arc_plan

    assert_raises(TypeError, pattern, arc_plan, HRMConfig(**dict(TINY, num_puzzle_identifiers=3)), **kwargs)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return HRMForPuzzleSolving(HRMConfig(**TINY)).eval()


_X = torch.full((1, 16), 2, dtype=torch.long)
MODEL_OPTION_CASES = [  # (id, solve keywords, exception type, message)
    ("solve-early-exit-string", dict(early_exit="false"), TypeError, r"early_exit must be True or False, got 'false'"),
    ("solve-return-trace-integer", dict(return_trace=1), TypeError, r"return_trace must be True or False, got 1"),
    ("solve-candidate-noise-bool", dict(num_candidates=2, candidate_noise=True), ValueError,
     r"candidate_noise must be a finite number >= 0, got True"),
    ("solve-candidates-beyond-memory", dict(num_candidates=HUGE), ValueError,
     r"solving 1 puzzle\(s\) x num_candidates=1000000000000 needs about [\d.]+ [GM]iB but about"),
    ("solve-trace-beyond-memory", dict(max_steps=HUGE, return_trace=True), ValueError,
     r"with a trace of up to 1000000000000 segments needs about"),
]


@pytest.mark.parametrize("name,kwargs,exc,pattern", MODEL_OPTION_CASES, ids=[c[0] for c in MODEL_OPTION_CASES])
def test_model_solve_typed_options(tiny_model, name, kwargs, exc, pattern):
    assert_raises(exc, pattern, tiny_model.solve, _X, **kwargs)


SEARCH_API_CASES = [  # (id, search keywords, exception type, message): modeling_hrm.search.search
    ("symmetries-number", dict(task="sudoku", breadth=2, kind="symmetry", symmetries=5), TypeError,
     r"search symmetries must be text such as 'rows\+cols', got int 5"),
    ("memory-budget-word", dict(memory_budget="big"), TypeError,
     r"memory_budget \(bytes\) must be an integer, got the string 'big'"),
    ("memory-budget-float", dict(memory_budget=1e9), TypeError,
     r"memory_budget \(bytes\) must be an integer, got float"),
    ("memory-budget-bool", dict(memory_budget=True), TypeError, r"memory_budget .* got the boolean True"),
    ("memory-budget-negative", dict(memory_budget=-1), ValueError,
     r"memory_budget must be a number of bytes >= 1, got -1"),
    ("grid-shape-text", dict(task="maze", grid_shape="4x4"), TypeError,
     r"grid_shape must be \(height, width\), two integers, got the string '4x4'"),
    ("grid-shape-one-number", dict(task="maze", grid_shape=(4,)), ValueError, r"grid_shape must be \(height, width\)"),
    ("grid-shape-float", dict(task="maze", grid_shape=(4.0, 4)), TypeError,
     r"grid_shape height must be an integer, got float 4\.0"),
    ("grid-shape-without-task", dict(grid_shape="4x4"), TypeError, r"grid_shape must be \(height, width\)"),
    ("task-number", dict(task=5), TypeError, r"task must be text \(sudoku, maze, arc\), got int 5"),
    ("kind-number", dict(breadth=2, kind=5), TypeError, r"kind must be text \(noise, .*\), got int 5"),
    ("selector-list", dict(selector=["q"]), TypeError,
     r"selector must be text \(q, vote, residual, valid\), got a list"),
    ("early-exit-string-false", dict(early_exit="false"), TypeError,
     r"early_exit must be True or False, got the string 'false'"),
    ("depth-string", dict(depth="4"), TypeError, r"depth must be an integer, got the string '4'"),
    ("breadth-float", dict(breadth=2.0), TypeError, r"breadth must be an integer, got float 2\.0"),
    ("seed-bool", dict(seed=True), TypeError, r"seed must be an integer, got the boolean True"),
    ("noise-infinite", dict(breadth=2, noise=float("inf")), ValueError, r"noise must be a finite number, got inf"),
    ("temperature-string", dict(breadth=2, kind="sample", temperature="1"), TypeError,
     r"temperature must be a number, got the string '1'"),
    ("max-rows-float", dict(max_rows=2.0), TypeError, r"max_rows must be an integer, got float 2\.0"),
    ("misspelt-setting", dict(bredth=2), ValueError, r"search: unknown key 'bredth'; expected depth, breadth"),
]


@pytest.mark.parametrize("name,kwargs,exc,pattern", SEARCH_API_CASES, ids=[c[0] for c in SEARCH_API_CASES])
def test_search_api_typed_options(tiny_model, name, kwargs, exc, pattern):
    from modeling_hrm.search import search

    assert_raises(exc, pattern, search, tiny_model, _X, **kwargs)
    assert_raises(ValueError, pattern, search, tiny_model, _X, **kwargs)  # either handler catches it


def test_search_setting_checks_its_own_types():
    from modeling_hrm.search import as_setting

    assert_raises(TypeError, r"search symmetries must be text such as 'rows\+cols', got int 5",
                  SearchSetting(breadth=2, kind="symmetry", symmetries=5).check)
    assert_raises(TypeError, r"early_exit must be True or False, got int 0", SearchSetting(early_exit=0).check)
    assert_raises(TypeError, r"search settings must be a SearchSetting, a dict or a string .* got int 5",
                  as_setting, 5, {})


_LABELS = np.full((1, 16), 2, dtype=np.uint8)
EVALUATE_GRID_CASES = [  # (id, evaluate_grid keywords, exception type, message)
    ("grid-number", dict(grid=5), TypeError, r"grid must be a string like 'depth=4,16 breadth=1,8'.* got int 5"),
    ("grid-missing", dict(), TypeError, r"grid must be .*\(or give settings=\), got None"),
    ("grid-dict-scalar", dict(grid={"depth": 4}), TypeError,
     r"search grid values of depth must be a list or tuple, got int 4"),
    ("grid-dict-unknown-key", dict(grid={"width": [3]}), ValueError, r"search: unknown key 'width'"),
    ("grid-dict-alias-twice", dict(grid={"depth": [1], "segments": [2]}), ValueError, r"search: depth is given twice"),
    ("grid-dict-two-seeds", dict(grid={"seed": [1, 2]}), ValueError, r"search: seed takes one value, got 2"),
    ("settings-string", dict(settings="depth=1"), TypeError, r"settings must be a list or tuple, got the string"),
    ("settings-dict-item", dict(settings=[{"depth": 1}]), TypeError,
     r"settings\[0\] must be a SearchSetting, got a dict"),
    ("selectors-string", dict(settings=[SearchSetting()], selectors="q"), TypeError,
     r"selectors must be a list or tuple, got the string 'q'"),
    ("selector-number", dict(settings=[SearchSetting()], selectors=[1]), TypeError,
     r"selectors\[0\] must be text \(q, vote, residual, valid\), got int 1"),
    ("grid-shape-text", dict(grid="depth=1", task="maze", grid_shape="4x4"), TypeError,
     r"grid_shape must be \(height, width\), two integers, got the string '4x4'"),
    ("log-not-callable", dict(grid="depth=1", log=5), TypeError, r"log must be a function that takes one line of text"),
    ("labels-other-shape", dict(grid="depth=1", labels=_LABELS[:, :3]), ValueError,
     r"inputs and labels must be arrays of one shape \(puzzles, seq_len\), got \(1, 16\) and \(1, 3\)"),
    ("task-number", dict(grid="depth=1", task=5), TypeError, r"task must be text \(sudoku, maze, arc\), got int 5"),
]


@pytest.mark.parametrize("name,kwargs,exc,pattern", EVALUATE_GRID_CASES, ids=[c[0] for c in EVALUATE_GRID_CASES])
def test_evaluate_grid_typed_options(tiny_model, name, kwargs, exc, pattern):
    from modeling_hrm.search import evaluate_grid

    kwargs = dict(kwargs)
    labels = kwargs.pop("labels", _LABELS)
    assert_raises(exc, pattern, evaluate_grid, tiny_model, _X.numpy(), labels, **kwargs)


def test_evaluate_grid_takes_a_dict_grid_with_aliases(tiny_model):
    """What the rules accept still runs: a dict grid of lists, an alias key (selectors)."""
    from modeling_hrm.search import evaluate_grid

    result = evaluate_grid(tiny_model, _X.numpy(), _LABELS, grid={"depth": [1, 2], "selectors": ["q", "vote"]})
    assert [(r["depth"], r["selector"]) for r in result["rows"]] == [(1, "q"), (1, "vote"), (2, "q"), (2, "vote")]


def test_pipeline_splits_a_list_into_batches_that_fit(solvers, monkeypatch):
    """Resources: where the rows of a list would not fit the memory budget, they are solved in smaller batches with
    the same answers (not refused, not an allocation error)."""
    import modeling_hrm.search as search

    puzzles = [GOOD_SUDOKU, "0000340012000000", "1000000000000000"]
    whole = solvers["sudoku"](puzzles, num_candidates=2)
    sizes = []
    forward = type(solvers["sudoku"]).forward
    monkeypatch.setattr(search, "default_memory_budget", lambda device: 1)  # one row per forward
    monkeypatch.setattr(type(solvers["sudoku"]), "forward",
                        lambda self, rows, **kw: sizes.append(len(rows["input_ids"])) or forward(self, rows, **kw))
    assert solvers["sudoku"](puzzles, num_candidates=2) == whole
    assert sizes == [1, 1, 1]


# ---------------------------------------------------------------------------------------------------------
# Rule: files. The weights agree with the config in shape and presence of every tensor, wherever a folder is read
# (our loader, AutoModel.from_pretrained, pipeline(model=folder)); config.json has no unknown or repeated key
# ---------------------------------------------------------------------------------------------------------
FOLDER_CASES = [  # (id, folder, message)
    ("learned-positions-vs-seq-len", "learned-seq-len",
     r"tensor 'embed_pos\.weight' has shape \[17, 16\] in the weights but \[37, 16\] by the config"),
    ("sequence-mlp-vs-seq-len", "trm-mlp-seq-len", r"tensor 'L_level\.layers\.0\.mlp_t\.\w+\.weight' has shape"),
    ("puzzle-table-the-config-lacks", "puzzle-width",
     r"have unexpected 1 tensor\(s\), first 'puzzle_embedding\.weight'"),
    ("config-misspelt-key", "typo-key", r"unknown key 'hiden_size' \(did you mean 'hidden_size'\?\).*silently ignored"),
    ("config-repeated-key", "duplicate-key", r"key 'hidden_size' is given twice in one object"),
]


@pytest.mark.parametrize("name,folder,pattern", FOLDER_CASES, ids=[c[0] for c in FOLDER_CASES])
@pytest.mark.parametrize("how", ["loader", "AutoModel", "pipeline"])
def test_folder_config_and_weights_agree(models, name, folder, pattern, how):
    from transformers import AutoModel, pipeline

    before = tree(models[folder])
    load = {"loader": load_pretrained_model, "AutoModel": AutoModel.from_pretrained,
            "pipeline": lambda path: pipeline("puzzle-solving", model=str(path), device="cpu")}[how]
    text = assert_raises(ValueError, pattern, load, models[folder])
    assert "Traceback" not in text and "Could not load model" not in text
    assert tree(models[folder]) == before


def test_folder_check_passes_good_folders(models):
    from transformers import AutoModel, pipeline

    for name in ("sudoku", "learned", "trm-mlp"):
        assert AutoModel.from_pretrained(models[name]).config.seq_len == 16
    assert pipeline("puzzle-solving", model=str(models["sudoku"]), device="cpu")(GOOD_SUDOKU)["kind"] == "sudoku"


# ---------------------------------------------------------------------------------------------------------
# Rule: Hub ids are validated (huggingface_hub's own rule) before any call to the Hub
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture
def no_hub_calls(monkeypatch):
    """Any download fails the test: an invalid id must be refused before the Hub is asked."""
    import huggingface_hub

    def called(*args, **kwargs):
        raise AssertionError("the Hub was called")

    for name in ("snapshot_download", "hf_hub_download"):
        monkeypatch.setattr(huggingface_hub, name, called)


HUB_ID_API_CASES = [  # (id, call, message)
    ("loader-double-dash", lambda: load_pretrained_model("own--er/model"), r"not a valid Hub repo id"),
    ("loader-double-dot", lambda: load_pretrained_model("owner/mo..del"), r"not a valid Hub repo id"),
    ("loader-name-too-long", lambda: load_pretrained_model("owner/" + "m" * 97), r"not a valid Hub repo id"),
    ("dataset-metadata-double-dash", lambda: __import__("dataset_scripts.common", fromlist=["x"]).load_hrm_metadata(
        "own--er/data"), r"dataset folder not found: own--er/data, and it is not a valid Hub repo id"),
    ("dataset-metadata-ends-in-git", lambda: __import__("dataset_scripts.common", fromlist=["x"]).load_hrm_metadata(
        "owner/data.git"), r"not a valid Hub repo id"),
    ("push-model-double-dot", lambda: __import__("training.hub", fromlist=["x"]).push_to_hub(".", "me/a..b"),
     r"--hub_model_id must look like 'owner/name' or 'name', got 'me/a\.\.b'"),
]


@pytest.mark.parametrize("name,call,pattern", HUB_ID_API_CASES, ids=[c[0] for c in HUB_ID_API_CASES])
def test_hub_ids_api(no_hub_calls, name, call, pattern):
    assert_raises(ValueError, pattern, call)


def test_hub_ids_on_the_command_line(no_hub_calls, models, work):
    out = work / "hub-eval-out"
    assert_cli_error(solve_cli, ["--model", "own--er/model", "--sudoku", GOOD_SUDOKU], r"not a valid Hub repo id")
    assert_cli_error(evaluate_cli, ["--model", models["sudoku"], "--dataset", "own..er/data", "--output-dir", out],
                     r"own\.\.er/data, and it is not a valid Hub repo id")
    assert_cli_error(convert_cli, ["own--er/HRM-checkpoint", "--output", work / "hub-convert-out"],
                     r"no such file or folder, and not a Hub repo id")
    assert_cli_error(convert_cli, [work / "no-run", "--output", work / "hub-convert-out", "--push-to-hub", "me/a--b"],
                     r"--push-to-hub 'me/a--b' is not a Hub repo id")
    assert not out.exists() and not (work / "hub-convert-out").exists()


# ---------------------------------------------------------------------------------------------------------
# Rule: resources. hrm-evaluate / hrm-solve refuse a request whose memory estimate exceeds what is free (exit 2)
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def datasets(work) -> dict[str, Path]:
    """4x4 Sudoku builds: `a`, `b` (another seed: other puzzles), `a-copy` (the same build in another folder) and
    `a-dup` (hrm_dataset.json with a key given twice)."""
    p = {}
    for name, seed in (("a", 0), ("b", 1), ("a-copy", 0)):
        p[name] = work / f"data-{name}"
        code, text = run_main(build_sudoku, ["--output-dir", p[name], "--size", "4", "--num-train", "8", "--num-test",
                                             "4", "--seed", seed, "--quiet"])
        assert code == 0, text
    p["a-dup"] = work / "data-a-dup"
    shutil.copytree(p["a"], p["a-dup"])
    meta = (p["a-dup"] / "hrm_dataset.json").read_text()
    (p["a-dup"] / "hrm_dataset.json").write_text(meta.replace("{", '{\n  "seq_len": 81,', 1))
    return p


EVALUATE_CASES = [  # (id, options, message)
    ("max-steps-beyond-memory", ["--max-steps", str(HUGE)], r"recording \d+ segments of 4 rows needs about"),
    ("scaling-steps-beyond-memory", ["--scaling-steps", f"1,{HUGE}"], r"recording 1000000000000 segments"),
    ("candidates-beyond-memory", ["--num-candidates", f"1,{HUGE}"],
     r"--num-candidates 1000000000000 \(its trajectories in one forward\) needs about"),
]


@pytest.mark.parametrize("name,extra,pattern", EVALUATE_CASES, ids=[c[0] for c in EVALUATE_CASES])
def test_evaluate_refuses_what_does_not_fit(models, datasets, work, name, extra, pattern):
    out = work / f"eval-{name}"
    assert_cli_error(evaluate_cli, ["--model", models["sudoku"], "--dataset", datasets["a"], "--output-dir", out,
                                    *extra], pattern)
    assert not out.exists()


def test_evaluate_checks_dataset_and_config_files(models, datasets, work):
    out = work / "eval-files"
    for argv, pattern in (
            (["--model", models["sudoku"], "--dataset", datasets["a-dup"]], r"key 'seq_len' is given twice"),
            (["--model", models["typo-key"], "--dataset", datasets["a"]], r"unknown key 'hiden_size'"),
            (["--model", models["duplicate-key"], "--dataset", datasets["a"]], r"key 'hidden_size' is given twice")):
        assert_cli_error(evaluate_cli, [*argv, "--output-dir", out], pattern)
    assert not out.exists()


SOLVE_RESOURCE_CASES = [
    ("candidates-beyond-memory", ["--num-candidates", str(HUGE)], r"num_candidates=1000000000000 needs about"),
    ("trace-beyond-memory", ["--max-steps", str(HUGE), "--show-steps"], r"a trace of up to 1000000000000 segments"),
]


@pytest.mark.parametrize("name,extra,pattern", SOLVE_RESOURCE_CASES, ids=[c[0] for c in SOLVE_RESOURCE_CASES])
def test_solve_refuses_what_does_not_fit(models, name, extra, pattern):
    assert_cli_error(solve_cli, ["--model", models["sudoku"], "--sudoku", GOOD_SUDOKU, *extra], pattern)


# ---------------------------------------------------------------------------------------------------------
# Rule: configs. A YAML key given twice is refused (the last one no longer wins silently); every YAML value has its
# option's type; train.py options are finite
# ---------------------------------------------------------------------------------------------------------
TRAIN_MODEL = dict(hidden_size=16, num_heads=2, puzzle_emb_ndim=16, H_layers=1, L_layers=1, H_cycles=1, L_cycles=1,
                   halt_max_steps=2)
TRAIN_SECTION = dict(global_batch_size=4, max_steps=2, save_steps=1, lr_warmup_steps=1, eval_steps=2, report_to="none",
                     disable_tqdm=True)


def _yaml(dataset: Path, extra_training: str = "", extra_model: str = "") -> str:
    model = "".join(f"  {k}: {v}\n" for k, v in TRAIN_MODEL.items()) + extra_model
    training = "".join(f"  {k}: {str(v).lower() if isinstance(v, bool) else v}\n" for k, v in TRAIN_SECTION.items())
    return f"dataset: {dataset}\nmodel:\n{model}training:\n{training}{extra_training}"


YAML_CASES = [  # (id, YAML text from the dataset, message)
    ("section-given-twice", lambda d: _yaml(d) + "model:\n  hidden_size: 32\n",
     r"not valid YAML at line 1[3-9], column 1: key 'model' is given twice in one mapping \(first at line 2\)"),
    ("key-given-twice", lambda d: _yaml(d, "  learning_rate: 1.0e-3\n  learning_rate: 1.0e-2\n"),
     r"key 'learning_rate' is given twice"),
    ("model-key-given-twice", lambda d: _yaml(d, extra_model="  hidden_size: 32\n"),
     r"key 'hidden_size' is given twice"),
    ("boolean-as-quoted-string", lambda d: _yaml(d, "  eval_early_exit: \"false\"\n"),
     r"training\.eval_early_exit must be true or false, got the string 'false' \(write it without quotes\)"),
    ("boolean-as-integer", lambda d: _yaml(d, "  compile: 1\n"), r"training\.compile must be true or false, got int 1"),
    ("text-read-as-boolean", lambda d: _yaml(d, "  mixed_precision: no\n"),
     r"training\.mixed_precision must be text, got the boolean False \(YAML reads an unquoted yes / no"),
    ("count-as-fraction", lambda d: _yaml(d, "  logging_steps: 2.5\n"), r"training\.logging_steps must be an integer"),
    ("number-as-boolean", lambda d: _yaml(d, "  learning_rate: true\n"),
     r"training\.learning_rate must be a finite number, got the boolean True"),
    ("number-infinite", lambda d: _yaml(d, "  max_train_minutes: .inf\n"),
     r"max_train_minutes must be a finite number"),
    ("model-boolean-as-string", lambda d: _yaml(d, extra_model="  no_ACT_continue: \"yes\"\n"),
     r"model\.no_ACT_continue must be true or false, got the string 'yes'"),
    ("model-number-as-word", lambda d: _yaml(d, extra_model="  rope_theta: high\n"),
     r"--rope_theta.*invalid float value: 'high'"),
]


@pytest.mark.parametrize("name,make,pattern", YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_train_yaml_rules(datasets, work, name, make, pattern):
    config = work / f"{name}.yaml"
    config.write_text(make(datasets["a"]))
    out = work / "train-refused"
    assert_cli_error(train_cli, ["--config", config, "--output_dir", out], pattern)
    assert not out.exists()


TRAIN_OPTION_CASES = [  # (id, command-line options, message)
    ("minutes-infinite", ["--max_train_minutes", "inf"], r"max_train_minutes must be a finite number > 0, got inf"),
    ("hub-model-id-double-dash", ["--push_to_hub", "true", "--hub_model_id", "me/a--b"],
     r"--hub_model_id must look like 'owner/name' or 'name', got 'me/a--b'"),
    ("dataset-invalid-hub-id", ["--dataset", "own--er/data"], r"no such folder, and not a Hub dataset repo id"),
    ("init-from-invalid-hub-id", ["--init_from", "owner/x..y"], r"not a valid Hub repo id"),
]


@pytest.mark.parametrize("name,extra,pattern", TRAIN_OPTION_CASES, ids=[c[0] for c in TRAIN_OPTION_CASES])
def test_train_option_rules(no_hub_calls, datasets, work, name, extra, pattern):
    config = work / "train-options.yaml"
    config.write_text(_yaml(datasets["a"]))
    out = work / "train-refused"
    assert_cli_error(train_cli, ["--config", config, "--output_dir", out, *extra], pattern)
    assert not out.exists()


def test_every_shipped_yaml_has_unique_keys_and_merges_still_work():
    from dataset_scripts.validation import load_yaml

    configs = sorted((Path(__file__).resolve().parents[1] / "training" / "configs").glob("*.yaml"))
    assert len(configs) > 10
    for config in configs:
        assert isinstance(load_yaml(config.read_text()), dict), config
    # A merge may override what it merges (that is what `<<` is for); a repeated key may not.
    assert load_yaml("base: &b {x: 1, y: 2}\nrun:\n  <<: *b\n  x: 3\n")["run"] == {"x": 3, "y": 2}
    with pytest.raises(yaml.YAMLError, match="key 'x' is given twice"):
        load_yaml("run:\n  x: 1\n  x: 2\n")


# ---------------------------------------------------------------------------------------------------------
# Rule: run state. A resume checks the data (fingerprint), the model config and the trajectory settings
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(datasets, work) -> dict[str, Path]:
    p = {"config": work / "resume.yaml", "run": work / "resume-run"}
    p["config"].write_text(_yaml(datasets["a"]))
    code, text = run_main(train_cli, ["--config", p["config"], "--output_dir", p["run"]])
    assert code == 0, text
    state = json.loads((p["run"] / "checkpoint-1" / "trainer_state.json").read_text())
    assert len(state["dataset_fingerprint"]) == 64
    # A checkpoint written before data fingerprints (it names its dataset only) and one whose state repeats a key.
    p["old"] = work / "resume-run-old"
    shutil.copytree(p["run"], p["old"])
    state.pop("dataset_fingerprint")
    (p["old"] / "checkpoint-1" / "trainer_state.json").write_text(json.dumps(state))
    p["dup"] = work / "resume-run-dup"
    shutil.copytree(p["run"], p["dup"])
    text = (p["dup"] / "checkpoint-1" / "trainer_state.json").read_text()
    (p["dup"] / "checkpoint-1" / "trainer_state.json").write_text(text.replace("{", '{\n  "step": 0,', 1))
    return p


RESUME_CASES = [  # (id, run to resume, extra options from the datasets, message)
    ("other-data", "run", lambda d: ["--dataset", d["b"]],
     r"the checkpoint was trained on other data \(.*data-a, fingerprint [0-9a-f]{12}\) than --dataset .*data-b "
     r"\(fingerprint [0-9a-f]{12}\); an exact resume needs the same data \(use --init_from"),
    ("other-learning-rate", "run", lambda d: ["--learning_rate", "0.5"],
     r"this run's training differs from the checkpoint's: \{'learning_rate': \(0\.5, 0\.0001\)\}"),
    ("other-seed", "run", lambda d: ["--seed", "7"], r"training differs .*'seed': \(7, 0\)"),
    ("other-ema", "run", lambda d: ["--ema_decay", "0.9"], r"training differs .*'ema_decay': \(0\.9, None\)"),
    ("other-recursion-depth", "run", lambda d: ["--H_cycles", "2"],
     r"this run's model differs from the checkpoint's: \{'H_cycles': \(2, 1\)\}"),
    ("other-halting-budget", "run", lambda d: ["--halt_max_steps", "4"], r"model differs .*'halt_max_steps': \(4, 2\)"),
    ("other-model-type", "run", lambda d: ["--model_type", "trm", "--H_layers", "null"], r"a hrm checkpoint, but this "
                                                                                          r"run trains trm"),
    ("old-checkpoint-other-data", "old", lambda d: ["--dataset", d["b"]],
     r"was trained on .*data-a \(it records no data fingerprint, so only the name can be compared\) but this run's "
     r"--dataset is .*data-b"),
    ("trainer-state-repeats-a-key", "dup", lambda d: [], r"trainer_state\.json is corrupt .*key 'step' is given twice"),
]


@pytest.mark.parametrize("name,which,extra,pattern", RESUME_CASES, ids=[c[0] for c in RESUME_CASES])
def test_resume_checks_the_run_state(run, datasets, work, name, which, extra, pattern):
    before = tree(run[which])
    out = work / "resume-refused"
    assert_cli_error(train_cli, ["--config", run["config"], "--output_dir", out, "--resume_from_checkpoint",
                                 run[which] / "checkpoint-1", "--max_steps", "3", *extra(datasets)], pattern)
    assert tree(run[which]) == before and not out.exists()


def test_resume_accepts_the_same_data_in_another_folder(run, datasets, work):
    """The fingerprint is the data's, not the folder's: the same build elsewhere resumes (no false refusal)."""
    out = work / "resume-moved"
    code, text = run_main(train_cli, ["--config", run["config"], "--output_dir", out, "--dataset", datasets["a-copy"],
                                      "--resume_from_checkpoint", run["run"] / "checkpoint-1", "--max_steps", "2"])
    assert code == 0, text
    assert json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())["step"] == 2


# ---------------------------------------------------------------------------------------------------------
# Rule: the converter never changes the architecture it converts (every arch key known, the keys that fix the
# architecture present, every tensor the config implies present); its YAML has no repeated key
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def originals(work, models) -> dict[str, Path]:
    from test_bad_input import ORIGINAL_ARCH

    p = {"work": work}

    def arch(name, **change):
        values = {k: v for k, v in dict(ORIGINAL_ARCH, **change).items() if v is not None}
        p[name] = write_original_run(work / f"orig-{name}", models["sudoku"], values)

    arch("good")
    arch("unknown-key", H_cycle=2)
    arch("trm-key-on-hrm", puzzle_emb_len=4)
    arch("no-hidden-size", hidden_size=None)
    arch("no-cycles", L_cycles=None)
    arch("unknown-loss", loss={"name": "losses@ACTLossHead", "loss_type": "focal_loss"})
    arch("table-width", puzzle_emb_ndim=32)
    arch("no-table")
    ckpt = p["no-table"] / "checkpoint"
    tensors = torch.load(ckpt, weights_only=True)
    tensors.pop("_orig_mod.model.inner.puzzle_emb.weights")
    torch.save(tensors, ckpt)
    arch("repeated-key")
    text = (p["repeated-key"] / "all_config.yaml").read_text()
    (p["repeated-key"] / "all_config.yaml").write_text(text + "arch:\n  hidden_size: 32\n")
    p["kept"] = work / "convert-kept"
    p["kept"].mkdir()
    (p["kept"] / "earlier.txt").write_text("earlier work")
    return p


CONVERTER_CASES = [  # (id, run, message)
    ("arch-misspelt-key", "unknown-key", r"arch\.H_cycle is not a field of the original HRM this converter maps "
                                         r"\(did you mean 'H_cycles'\?\)"),
    ("arch-trm-key-on-hrm", "trm-key-on-hrm", r"arch\.puzzle_emb_len is not a field of the original HRM"),
    ("arch-without-hidden-size", "no-hidden-size",
     r"the arch section has no hidden_size, which fixes the architecture"),
    ("arch-without-cycles", "no-cycles", r"the arch section has no L_cycles"),
    ("arch-unknown-loss", "unknown-loss", r"arch\.loss\.loss_type 'focal_loss' is not one the models implement"),
    ("puzzle-table-lacking", "no-table", r"the checkpoint lacks puzzle_emb\.weights, which arch\.puzzle_emb_ndim=16 "
                                         r"implies"),
    ("puzzle-table-other-width", "table-width", r"puzzle_emb\.weights has shape \[1, 16\] but arch\.puzzle_emb_ndim is "
                                                r"32"),
    ("yaml-repeats-arch", "repeated-key", r"not valid YAML at line \d+, column 1: key 'arch' is given twice"),
]


@pytest.mark.parametrize("name,which,pattern", CONVERTER_CASES, ids=[c[0] for c in CONVERTER_CASES])
def test_converter_rules(originals, name, which, pattern):
    p = originals
    before = tree(p[which])
    for output in (p["work"] / "converted-refused", p["kept"]):
        assert_cli_error(convert_cli, [p[which], "--seq-len", "16", "--output", output, "--overwrite"], pattern)
    assert not (p["work"] / "converted-refused").exists()
    assert tree(p["kept"]) == {"earlier.txt": b"earlier work"} and tree(p[which]) == before


def test_converter_still_converts_the_good_run(originals, models):
    out = originals["work"] / "converted-good"
    code, text = run_main(convert_cli, [originals["good"], "--seq-len", "16", "--output", out])
    assert code == 0, text
    assert torch.equal(load_pretrained_model(out).puzzle_embedding.weight,
                       load_pretrained_model(models["sudoku"]).puzzle_embedding.weight)


# ---------------------------------------------------------------------------------------------------------
# Rule: the metrics check their inputs before `evaluate` casts them (a float id truncated, a NaN ranked)
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def metrics():
    from training.evaluation import load_metric

    return {name: load_metric(name) for name in ("puzzle_accuracy", "arc_pass_at_k")}


PUZZLE_METRIC = dict(predictions=[[2, 3], [2, 4]], references=[[2, 3], [2, 3]], steps=[1, 2], q_halt_logits=[3.0, 1.0])
ARC_METRIC = dict(predictions=["1", "1", "2"], references=["1", "1", "1"], task_ids=["a", "a", "b"],
                  test_indices=[0, 0, 0], confidences=[0.5, 0.6, 0.7])
METRIC_CASES = [  # (id, metric, changed inputs, exception type, message)
    ("token-id-fraction", "puzzle_accuracy", dict(predictions=[[2.7, 3], [2, 4]]), TypeError,
     r"predictions\[0\] must hold integer token ids, got float 2\.7"),
    ("token-id-bool", "puzzle_accuracy", dict(references=[[True, 3], [2, 3]]), TypeError, r"got bool True"),
    ("token-id-beyond-int32", "puzzle_accuracy", dict(predictions=[[2**40, 3], [2, 4]]), TypeError,
     r"integer token ids, got int 1099511627776"),
    ("row-as-string", "puzzle_accuracy", dict(predictions=["23", "24"]), TypeError,
     r"predictions\[0\] must be a sequence of token ids, got str '23'"),
    ("predictions-none", "puzzle_accuracy", dict(predictions=None), TypeError,
     r"predictions must be a list .* got None"),
    ("steps-shorter", "puzzle_accuracy", dict(steps=[1]), ValueError, r"one entry per row, got predictions 2, "
                                                                      r"references 2, steps 1, q_halt_logits 2"),
    ("steps-zero", "puzzle_accuracy", dict(steps=[0, 1]), ValueError, r"steps must be integers >= 1"),
    ("q-halt-nan", "puzzle_accuracy", dict(q_halt_logits=[float("nan"), 1.0]), ValueError,
     r"q_halt_logits must be finite numbers, got float nan"),
    ("ignore-index-fraction", "puzzle_accuracy", dict(ignore_index=0.5), TypeError,
     r"ignore_index must be an integer or a list of integers, got float 0\.5"),
    ("k-values-as-text", "arc_pass_at_k", dict(k_values="12"), TypeError,
     r"k_values must be a list or tuple, got the string '12'"),
    ("k-values-fraction", "arc_pass_at_k", dict(k_values=[1.5]), TypeError, r"k_values\[0\] must be an integer"),
    ("k-values-bool", "arc_pass_at_k", dict(k_values=[True]), TypeError, r"got the boolean True"),
    ("confidence-nan", "arc_pass_at_k", dict(confidences=[float("nan"), 0.6, 0.7]), ValueError,
     r"confidences must be finite numbers, got float nan"),
    ("grid-as-integer", "arc_pass_at_k", dict(predictions=[1, 1, 2]), TypeError,
     r"predictions must hold text \(grid strings\), got int 1"),
    ("columns-of-other-lengths", "arc_pass_at_k", dict(confidences=[0.5, 0.6]), ValueError,
     r"one entry per row, got predictions 3, .* confidences 2"),
    ("test-index-negative", "arc_pass_at_k", dict(test_indices=[-1, 0, 0]), ValueError,
     r"test_indices must hold integers >= 0, got int -1"),
    ("task-id-none", "arc_pass_at_k", dict(task_ids=[None, "a", "b"]), TypeError, r"task_ids must hold text"),
]


@pytest.mark.parametrize("name,metric,change,exc,pattern", METRIC_CASES, ids=[c[0] for c in METRIC_CASES])
def test_metric_inputs(metrics, name, metric, change, exc, pattern):
    inputs = dict(PUZZLE_METRIC if metric == "puzzle_accuracy" else ARC_METRIC, **change)
    assert_raises(exc, pattern, metrics[metric].compute, **inputs)
    # the metric still scores good input afterwards (a refused batch leaves nothing behind)
    good = PUZZLE_METRIC if metric == "puzzle_accuracy" else ARC_METRIC
    assert metrics[metric].compute(**good)["pass@1" if metric == "arc_pass_at_k" else "exact_accuracy"] == 0.5


def test_vote_tally_checks_its_rows_and_k():
    from dataset_scripts.arc import VoteTally, score_tasks

    tally = VoteTally()
    assert_raises(ValueError, r"one entry per row", tally.add, ["1", "2"], ["1"], ["a", "a"], [0, 0], [0.5, 0.5])
    assert tally.votes == {}  # nothing counted from a refused call
    assert_raises(TypeError, r"k_values\[0\] must be an integer, got the boolean True", score_tasks,
                  *ARC_METRIC.values(), k_values=[True])
