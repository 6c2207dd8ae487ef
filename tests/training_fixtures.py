"""Fixtures for the training tests: a tiny 4×4 Sudoku dataset folder in the hrm layout (docs/CONTRACTS.md §1)
and a helper to run `training/train.py` in a subprocess.

The dataset is written here (pyarrow, a few hundred rows) rather than with the builder so the training tests
control puzzle ids and groups: several puzzle ids exercise the sign-SGD table, groups of 2 rows exercise the
group sampler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TRAIN = str(REPO / "training" / "train.py")

# A tiny model: 1 + 1 layers of width 32, 2 × 2 cycles, up to 3 ACT segments.
TINY_MODEL = {"hidden_size": 32, "num_heads": 2, "expansion": 2.0, "H_layers": 1, "L_layers": 1, "H_cycles": 2,
              "L_cycles": 2, "puzzle_emb_ndim": 32, "halt_max_steps": 3}
# Its TRM counterpart: one network of 2 layers, 2 × 2 recursion, one puzzle-embedding position.
TINY_TRM = {"type": "trm", "hidden_size": 32, "num_heads": 2, "expansion": 2.0, "L_layers": 2, "H_cycles": 2,
            "L_cycles": 2, "puzzle_emb_ndim": 32, "puzzle_emb_len": 1, "halt_max_steps": 3}


def _solution(rng: np.random.Generator) -> np.ndarray:
    base = np.array([[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 1]])
    digits = np.concatenate([[0], rng.permutation(4) + 1])
    grid = digits[base]
    bands = rng.permutation(2)
    rows = np.concatenate([2 * b + rng.permutation(2) for b in bands])
    stacks = rng.permutation(2)
    cols = np.concatenate([2 * s + rng.permutation(2) for s in stacks])
    grid = grid[rows][:, cols]
    return grid.T if rng.random() < 0.5 else grid


def write_tiny_sudoku(folder: Path, num_train: int = 256, num_test: int = 32, num_puzzle_ids: int = 8,
                      blanks: int = 6, seed: int = 0) -> Path:
    """A 4×4 Sudoku dataset folder: tokens PAD 0, blank 1, digit d → d + 1 (vocab 6, seq_len 16).

    Train rows come in groups of 2 (same `group_id`); puzzle ids cycle through 1..num_puzzle_ids-1 (0 = blank).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    counts = {}
    for split, n in (("train", num_train), ("test", num_test)):
        labels = np.stack([_solution(rng).reshape(-1) + 1 for _ in range(n)]).astype(np.uint8)
        inputs = labels.copy()
        for row in inputs:
            row[rng.choice(16, blanks, replace=False)] = 1
        ids = (1 + np.arange(n) % (num_puzzle_ids - 1)).astype(np.int32) if split == "train" else np.zeros(n, np.int32)
        groups = (np.arange(n) // 2).astype(np.int32)
        seq_type = pa.list_(pa.uint8(), 16)
        table = pa.table({
            "inputs": pa.FixedSizeListArray.from_arrays(pa.array(inputs.reshape(-1), pa.uint8()), 16),
            "labels": pa.FixedSizeListArray.from_arrays(pa.array(labels.reshape(-1), pa.uint8()), 16),
            "puzzle_identifiers": pa.array(ids, pa.int32()), "group_id": pa.array(groups, pa.int32())})
        assert table.schema.field("inputs").type == seq_type
        pq.write_table(table, folder / "data" / f"{split}-00000-of-00001.parquet")
        counts[split] = n
    meta = {"task": "sudoku", "vocab_size": 6, "seq_len": 16, "pad_id": 0, "ignore_label_id": -100,
            "num_puzzle_identifiers": num_puzzle_ids,
            "puzzle_identifier_names": ["<blank>"] + [f"p{i}" for i in range(1, num_puzzle_ids)],
            "grid_height": 4, "grid_width": 4, "num_rows": counts,
            "token_names": ["<pad>", ".", "1", "2", "3", "4"], "build_command": "tests/training_fixtures.py"}
    (folder / "hrm_dataset.json").write_text(json.dumps(meta, indent=2))
    (folder / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*.parquet\n"
        "  - split: test\n    path: data/test-*.parquet\n---\n# tiny 4x4 sudoku (tests)\n")
    return folder


def tiny_args(dataset: Path, output_dir: Path, *extra: str, model: dict | None = None, base: dict = TINY_MODEL
              ) -> list[str]:
    """Command-line arguments for a fast CPU run on the tiny dataset (`base=TINY_TRM` for TRM)."""
    args = ["--dataset", str(dataset), "--output_dir", str(output_dir), "--global_batch_size", "16",
            "--learning_rate", "1e-3", "--lr_warmup_steps", "2", "--weight_decay", "0.1", "--puzzle_emb_lr", "1e-2",
            "--report_to", "none", "--disable_tqdm", "--logging_steps", "1", "--eval_batch_size", "32"]
    for key, value in {**base, **(model or {})}.items():
        args += ["--set", f"model.{key}={value}"]
    return args + list(extra)


def subprocess_env(threads: int = 1) -> dict:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
                "PYTHONPATH": str(REPO) + os.pathsep + env.get("PYTHONPATH", ""), "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1"})
    env.pop("ACCELERATE_USE_CPU", None)
    return env


def run_train(args: list[str], *, threads: int = 1, timeout: float = 120, launcher: list[str] | None = None,
              env: dict | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    """Run training in a subprocess; returns (the JSON summary line, the completed process)."""
    cmd = (launcher or [PYTHON]) + [TRAIN] + args
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=env or subprocess_env(threads))
    if proc.returncode != 0:
        raise AssertionError(f"training failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON summary in stdout:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return json.loads(lines[-1]), proc
