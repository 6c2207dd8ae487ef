"""Shared parts of the dataset builders: Hub layout (parquet shards + card + metadata),
loading helpers used by training, leak checks, command-line plumbing and Hub upload.

Layout written by every builder (docs/CONTRACTS.md §1)::

    DIR/README.md                       dataset card, YAML `configs:` -> data/{split}-*.parquet
    DIR/hrm_dataset.json                metadata the model / trainer need
    DIR/data/{split}-00000-of-0000N.parquet
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dataset_scripts.validation import REPO_ID_RULE, DuplicateKeyError, is_repo_id, loads_json

METADATA_FILENAME = "hrm_dataset.json"
DATA_DIR = "data"
PAD_ID = 0
IGNORE_LABEL_ID = -100
BLANK_IDENTIFIER_NAME = "<blank>"
#: Target uncompressed bytes per parquet shard (compressed shards are far smaller).
DEFAULT_SHARD_BYTES = 512 * 1024 * 1024
#: Rows per parquet row group: small enough for streaming readers, large enough to compress.
ROW_GROUP_ROWS = 65536


class HubUploadError(RuntimeError):
    """Upload to the Hub failed (no token, no network, permission): message is one line."""


class DatasetLoadError(ValueError):
    """A dataset folder / repo id / split that cannot be loaded: message is one line naming the problem."""


# ----------------------------------------------------------------------------- arrow helpers


def fixed_list_array(values: np.ndarray) -> pa.FixedSizeListArray:
    """(N, L) uint8 numpy -> Arrow fixed_size_list<uint8>[L] without a Python loop."""
    values = np.ascontiguousarray(values, dtype=np.uint8)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {values.shape}")
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), type=pa.uint8()), values.shape[1])


def base_columns(inputs: np.ndarray, labels: np.ndarray, puzzle_identifiers: np.ndarray,
                 group_id: np.ndarray) -> dict[str, pa.Array]:
    """The four contract columns as Arrow arrays."""
    n = len(inputs)
    if not (len(labels) == len(puzzle_identifiers) == len(group_id) == n):
        raise ValueError("inputs, labels, puzzle_identifiers and group_id must have the same length")
    if inputs.shape != labels.shape:
        raise ValueError(f"inputs shape {inputs.shape} != labels shape {labels.shape}")
    return {
        "inputs": fixed_list_array(inputs),
        "labels": fixed_list_array(labels),
        "puzzle_identifiers": pa.array(np.asarray(puzzle_identifiers, dtype=np.int32), type=pa.int32()),
        "group_id": pa.array(np.asarray(group_id, dtype=np.int32), type=pa.int32()),
    }


def features_yaml(schema: pa.Schema) -> list[str]:
    """Human-readable schema lines for the card."""
    names = {pa.uint8(): "uint8", pa.int16(): "int16", pa.int32(): "int32", pa.bool_(): "bool", pa.string(): "string"}
    out = []
    for f in schema:
        t = f.type
        if pa.types.is_fixed_size_list(t):
            out.append(f"`{f.name}`: `List(Value(\"{names.get(t.value_type, str(t.value_type))}\"), length={t.list_size})`")
        else:
            out.append(f"`{f.name}`: `Value(\"{names.get(t, str(t))}\")`")
    return out


# ----------------------------------------------------------------------------- writing


class SplitWriter:
    """Streams Arrow record batches of one split into parquet shards of bounded size.

    Shards are written as ``data/{split}-{i:05d}.tmp`` and renamed to the Hub convention
    ``{split}-{i:05d}-of-{n:05d}.parquet`` on ``close`` (n is only known at the end).
    """

    def __init__(self, output_dir: str | os.PathLike, split: str, shard_bytes: int = DEFAULT_SHARD_BYTES,
                 compression: str = "zstd"):
        self.dir = Path(output_dir) / DATA_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in list(self.dir.glob(f"{split}-*.parquet")) + list(self.dir.glob(f"{split}-*.tmp")):
            old.unlink()  # a rebuild into the same folder must not mix old shards in
        self.split = split
        self.shard_bytes = shard_bytes
        self.compression = compression
        self.paths: list[Path] = []
        self.writer: pq.ParquetWriter | None = None
        self.schema: pa.Schema | None = None
        self.current_bytes = 0
        self.num_rows = 0

    def write(self, columns: Mapping[str, pa.Array] | pa.Table) -> None:
        table = columns if isinstance(columns, pa.Table) else pa.table(dict(columns))
        if self.schema is None:
            self.schema = table.schema
        elif table.schema != self.schema:
            table = table.cast(self.schema)
        start = 0
        while start < table.num_rows:
            if self.writer is None:
                path = self.dir / f"{self.split}-{len(self.paths):05d}.tmp"
                self.paths.append(path)
                self.writer = pq.ParquetWriter(path, self.schema, compression=self.compression)
                self.current_bytes = 0
            row_bytes = max(1, table.nbytes // max(1, table.num_rows))
            room = max(1, (self.shard_bytes - self.current_bytes) // row_bytes)
            part = table.slice(start, room)
            self.writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
            self.current_bytes += part.nbytes
            self.num_rows += part.num_rows
            start += part.num_rows
            if self.current_bytes >= self.shard_bytes:
                self.writer.close()
                self.writer = None

    def close(self) -> list[Path]:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if not self.paths:
            raise ValueError(f"split {self.split!r} has no rows")
        final = []
        n = len(self.paths)
        for i, p in enumerate(self.paths):
            target = self.dir / f"{self.split}-{i:05d}-of-{n:05d}.parquet"
            p.rename(target)
            final.append(target)
        return final


def write_split(output_dir: str | os.PathLike, split: str, columns: Mapping[str, pa.Array] | pa.Table,
                shard_bytes: int = DEFAULT_SHARD_BYTES) -> tuple[int, pa.Schema]:
    """Write one in-memory split; returns (num_rows, schema)."""
    w = SplitWriter(output_dir, split, shard_bytes=shard_bytes)
    w.write(columns)
    w.close()
    return w.num_rows, w.schema


def metadata_dict(task: str, vocab_size: int, seq_len: int, token_names: list[str],
                  puzzle_identifier_names: list[str], grid_height: int, grid_width: int,
                  num_rows: dict[str, int], **extra: Any) -> dict[str, Any]:
    """Build the `hrm_dataset.json` content (contract keys first, task-specific keys after)."""
    if len(token_names) != vocab_size:
        raise ValueError(f"{len(token_names)} token names for vocab_size {vocab_size}")
    if not puzzle_identifier_names or puzzle_identifier_names[0] != BLANK_IDENTIFIER_NAME:
        raise ValueError(f"puzzle identifier 0 must be {BLANK_IDENTIFIER_NAME!r}")
    meta = {
        "task": task,
        "vocab_size": int(vocab_size),
        "seq_len": int(seq_len),
        "pad_id": PAD_ID,
        "ignore_label_id": IGNORE_LABEL_ID,
        "num_puzzle_identifiers": len(puzzle_identifier_names),
        "puzzle_identifier_names": list(puzzle_identifier_names),
        "grid_height": int(grid_height),
        "grid_width": int(grid_width),
        "num_rows": {k: int(v) for k, v in num_rows.items()},
        "token_names": list(token_names),
        "build_command": command_string(),
    }
    meta.update(extra)
    return meta


def write_metadata(output_dir: str | os.PathLike, meta: dict[str, Any]) -> Path:
    path = Path(output_dir) / METADATA_FILENAME
    # puzzle_identifier_names can hold ~1M entries for ARC: keep the file compact.
    indent = 2 if meta.get("num_puzzle_identifiers", 0) < 1000 else None
    path.write_text(json.dumps(meta, indent=indent) + "\n")
    return path


HRM_BIBTEX = """@article{wang2025hrm,
  title   = {Hierarchical Reasoning Model},
  author  = {Wang, Guan and Li, Jin and Sun, Yuhao and Chen, Xing and Liu, Changling and Wu, Yue and Lu, Meng and Song, Sen and Abbasi Yadkori, Yasin},
  journal = {arXiv preprint arXiv:2506.21734},
  year    = {2025}
}"""
ARC_BIBTEX = """@article{chollet2019measure,
  title   = {On the Measure of Intelligence},
  author  = {Chollet, Fran{\\c{c}}ois},
  journal = {arXiv preprint arXiv:1911.01547},
  year    = {2019}
}"""
ARC2_BIBTEX = """@article{chollet2025arcagi2,
  title   = {{ARC-AGI-2}: A New Challenge for Frontier AI Reasoning Systems},
  author  = {Chollet, Fran{\\c{c}}ois and Knoop, Mike and Kamradt, Gregory and Landers, Bryan and Pinkard, Henry},
  journal = {arXiv preprint arXiv:2505.11831},
  year    = {2025}
}"""
CONCEPTARC_BIBTEX = """@article{moskvichev2023conceptarc,
  title   = {The {ConceptARC} Benchmark: Evaluating Understanding and Generalization in the {ARC} Domain},
  author  = {Moskvichev, Arseny and Odouard, Victor Vikram and Mitchell, Melanie},
  journal = {Transactions on Machine Learning Research},
  year    = {2023}
}"""
#: What the card's usage snippet loads until the folder is pushed (`card_for_repo` puts the Hub id in).
CARD_PLACEHOLDER = "REPO_OR_FOLDER"


def split_semantics(meta: dict[str, Any]) -> str:
    """What each split holds and what it is for, from the metadata (the card's "Splits" section)."""
    task = meta.get("task")
    if task == "arc":
        mode = meta.get("split_mode", "")
        return ("`train`: the rows to train on: the pairs of the training tasks and the demonstration pairs the "
                "split mode gives it, each in its augmented versions (dihedral x colour permutation; `group_id` = the "
                "task). `test`: the rows to evaluate on; a test input is answered by voting over its versions and "
                "scored by pass@K over its task (the rows with `is_test_pair`)."
                + (f" Split mode `{mode}`, described above." if mode else ""))
    unit = "mazes" if task == "maze" else "puzzles"
    aug = meta.get("num_aug") or (8 if meta.get("dihedral_aug") else 0)
    counts = [f"{meta[k]:,}" if k in meta else None for k in ("num_train_puzzles", "num_test_puzzles")]
    return (f"`train`: {counts[0] + ' ' if counts[0] else ''}{unit} to learn from"
            + (f", each followed by augmented variants (rows sharing its `group_id`)" if aug else "")
            + f". `test`: {counts[1] + ' ' if counts[1] else ''}held-out {unit}, never augmented: report results on "
            "this split. No test puzzle appears in train, up to the symmetries named under Validation."
            + (f" `validation`: {meta.get('num_validation_puzzles', 0):,} held-out {unit} made like test, distinct "
               f"from test and train: make every choice (model, learning rate, segments, early stopping) on it, never "
               f"on test." if "validation" in meta.get("num_rows", {}) else ""))


def dataset_citation(meta: dict[str, Any]) -> str:
    """How to cite the original data (the card's "Citation" section), by task and source."""
    task, source = meta.get("task"), str(meta.get("source", ""))
    if task == "arc":
        names = " ".join([source] + [str(s.get("name", "")) for s in meta.get("task_sources", [])
                                     if isinstance(s, dict)]).lower()
        entries = [ARC_BIBTEX] + ([ARC2_BIBTEX] if "agi-2" in names or "arc2" in names or "agi2" in names else []) \
            + ([CONCEPTARC_BIBTEX] if "concept" in names else [])
        return ("The tasks are the Abstraction and Reasoning Corpus (ARC-AGI, Chollet; ARC Prize Foundation) and the "
                "collections listed under Sources; cite them, and the HRM paper for this encoding:\n\n```bibtex\n"
                + "\n\n".join(entries + [HRM_BIBTEX]) + "\n```")
    what = "Sudoku-Extreme" if task == "sudoku" else "Maze-30x30-Hard"
    if source == "generate":
        origin = ("The puzzles were generated by the `hrm` project's builder (see the build command); there is no "
                  "original data set to cite. For the task setup, cite the HRM paper:")
    else:
        origin = (f"The puzzles come from the CSV files given to the builder ({meta.get('source_detail', 'see Sources')}"
                  f"). For the HRM benchmark release ({what}, compiled by Wang et al.) cite the HRM paper, and the "
                  f"puzzle collections it credits:")
    return f"{origin}\n\n```bibtex\n{HRM_BIBTEX}\n```"


def card_for_repo(folder: str | os.PathLike, repo_id: str) -> None:
    """Put the Hub id into a built card's usage snippet (before a push)."""
    path = Path(folder) / "README.md"
    if path.is_file():
        path.write_text(path.read_text().replace(CARD_PLACEHOLDER, repo_id))


def write_card(output_dir: str | os.PathLike, *, pretty_name: str, license: str, tags: list[str],
               splits: list[str], num_rows: dict[str, int], schema: pa.Schema, description: str,
               sources: str, augmentation: str, meta: dict[str, Any], license_note: str = "",
               validation: str = "", extra_sections: str = "", citation: str | None = None) -> Path:
    """Write the dataset card README.md with a YAML header the Hub and `load_dataset` read.

    Besides what the builder passes, the card states the split semantics (`split_semantics`), how to cite the
    original data (`dataset_citation`, or `citation`) and the exact build command."""
    total = sum(num_rows.values())
    size_cat = ("n<1K" if total < 1_000 else "1K<n<10K" if total < 10_000 else "10K<n<100K" if total < 100_000
                else "100K<n<1M" if total < 1_000_000 else "1M<n<10M" if total < 10_000_000 else "10M<n<100M")
    yaml = ["---", f"license: {license}", f"pretty_name: {pretty_name}", "task_categories:", "- other",
            "tags:"] + [f"- {t}" for t in tags] + ["size_categories:", f"- {size_cat}", "configs:",
                                                   "- config_name: default", "  data_files:"]
    for s in splits:
        yaml += [f"  - split: {s}", f"    path: {DATA_DIR}/{s}-*"]
    yaml.append("---")
    meta_view = {k: v for k, v in meta.items() if k not in ("puzzle_identifier_names", "build_command")}
    n_names = len(meta.get("puzzle_identifier_names", []))
    body = [
        f"# {pretty_name}", "", description, "",
        "Built with the `hrm` project's `dataset_scripts` (Hierarchical Reasoning Model, arXiv 2506.21734).",
        "", "## Usage", "", "```python", "from datasets import load_dataset",
        "from dataset_scripts.common import load_hrm_metadata  # or read hrm_dataset.json yourself",
        f"ds = load_dataset(\"{CARD_PLACEHOLDER}\")",
        f"meta = load_hrm_metadata(\"{CARD_PLACEHOLDER}\")  # vocab_size, seq_len, num_puzzle_identifiers, ...",
        "```", "",
        "## Splits", "", split_semantics(meta), "", "| split | rows |", "|---|---|"] + [
        f"| {s} | {num_rows[s]:,} |" for s in splits] + [
        "", "## Schema", "",
        "Token ids are already encoded; label 0 is PAD and is not scored (map it to -100).", ""] + [
        f"- {line}" for line in features_yaml(schema)] + [
        "", "## Metadata (`hrm_dataset.json`)", "", "```json", json.dumps(meta_view, indent=1), "```", "",
        f"`puzzle_identifier_names` holds {n_names:,} names (index = puzzle id, 0 = `<blank>`).", "",
        "## Sources", "", sources, "", "## Augmentation", "", augmentation, ""]
    if validation:
        body += ["## Validation", "", validation, ""]
    if extra_sections:
        body += [extra_sections, ""]
    body += ["## Build command", "", "Rebuild it exactly (the `hrm` project's `dataset_scripts`):", "", "```bash",
             meta.get("build_command", command_string()), "```", "",
             "## Citation", "", citation or dataset_citation(meta), "",
             "## Licence", "", f"`{license}`. {license_note}".strip(), ""]
    path = Path(output_dir) / "README.md"
    path.write_text("\n".join(yaml + [""] + body))
    return path


_BUILD_COMMAND: list[str] | None = None


def set_build_command(module: str, argv: list[str] | None) -> None:
    """Record the command of this build: ``sys.argv`` when run from the shell, or the
    equivalent ``python -m module ARGS`` when a builder's ``main(argv)`` is called from Python."""
    global _BUILD_COMMAND
    _BUILD_COMMAND = None if argv is None else ["-m", module] + list(argv)


def command_string() -> str:
    """The exact command line of the running build (for the card and metadata); tokens masked."""
    argv = list(sys.argv) if _BUILD_COMMAND is None else list(_BUILD_COMMAND)
    if argv[:1] == ["-m"]:
        argv = [argv[1]] + argv[2:]
    # Never record a token in a card that gets published.
    for i, a in enumerate(argv):
        if a == "--token" and i + 1 < len(argv):
            argv[i + 1] = "***"
        elif a.startswith("--token="):
            argv[i] = "--token=***"
    prog = argv[0] if argv else ""
    parent = os.path.basename(os.path.dirname(os.path.abspath(prog))) if prog.endswith(".py") else ""
    if parent == "dataset_scripts" and sys.argv and sys.argv[0] == prog and _BUILD_COMMAND is None and \
            getattr(sys.modules.get("__main__"), "__package__", None):
        prog = "dataset_scripts." + os.path.basename(prog)[:-3]  # launched with `python -m`
    if prog.endswith(".py"):
        return " ".join(["python", shlex.quote(prog)] + [shlex.quote(a) for a in argv[1:]])
    return " ".join(shlex.quote(a) for a in ["python", "-m", prog] + argv[1:])


def folder_size_bytes(path: str | os.PathLike) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- leak checks


def find_leaks(train_keys: np.ndarray, test_keys: np.ndarray) -> np.ndarray:
    """Boolean mask over ``train_keys`` (uint64 hashes): True where the key is a test key.

    A binary search in the sorted test keys: `np.isin` re-sorts both arrays on every call, which costs
    seconds when millions of symmetry keys are checked chunk by chunk."""
    train = np.asarray(train_keys, dtype=np.uint64)
    test = sorted_keys(test_keys)
    if len(test) == 0:
        return np.zeros(train.shape, dtype=bool)
    return test[np.minimum(np.searchsorted(test, train), len(test) - 1)] == train


def sorted_keys(keys: np.ndarray) -> np.ndarray:
    """The distinct uint64 keys in ascending order (unchanged when already so). Sorts instead of `np.unique`,
    whose hash-based path takes seconds on millions of uint64 keys."""
    keys = np.asarray(keys, dtype=np.uint64).reshape(-1)
    if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
        keys = np.sort(keys)
        keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
    return keys


def first_duplicates(keys: np.ndarray) -> np.ndarray:
    """Boolean mask: True for every key that already appeared earlier in the array."""
    keys = np.asarray(keys)
    _, first = np.unique(keys, return_index=True)
    out = np.ones(len(keys), dtype=bool)
    out[first] = False
    return out


# ----------------------------------------------------------------------------- loading


def _is_local(path_or_repo_id: str | os.PathLike) -> bool:
    return os.path.isdir(os.fspath(path_or_repo_id))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _download_metadata(repo_id: str, revision: str | None, token) -> str:
    """`hf_hub_download` of the metadata file, its failures turned into one `DatasetLoadError` line."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    path = os.fspath(repo_id)
    if os.path.exists(path):
        raise DatasetLoadError(f"{path} is a file, not a dataset folder")
    if path.startswith((".", "/", "~")) or path.count("/") != 1:
        raise DatasetLoadError(f"dataset folder not found: {path}")
    if not is_repo_id(path):  # checked before any call to the Hub
        raise DatasetLoadError(f"dataset folder not found: {path}, and it is not a valid Hub repo id either "
                               f"({REPO_ID_RULE})")
    prefix = f"{path!r} is not a local folder, and as a Hub dataset repo id it"
    try:
        return hf_hub_download(repo_id=path, filename=METADATA_FILENAME, repo_type="dataset", revision=revision,
                               token=token)
    except RepositoryNotFoundError:
        raise DatasetLoadError(f"{prefix} was not found on the Hugging Face Hub (private? log in)") from None
    except RevisionNotFoundError:
        raise DatasetLoadError(f"{prefix} has no revision {revision!r}") from None
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the network or huggingface.co cannot be reached"
        raise DatasetLoadError(f"{prefix} cannot be downloaded: {why}, and it is not in the local cache") from None
    except EntryNotFoundError:
        raise DatasetLoadError(f"{prefix} has no {METADATA_FILENAME}; is it an HRM dataset?") from None
    except (HfHubHTTPError, OSError) as err:
        raise DatasetLoadError(f"{prefix} could not be downloaded: {_first_line(err)}") from None


def load_hrm_metadata(path_or_repo_id: str | os.PathLike, revision: str | None = None,
                      token: str | bool | None = None) -> dict[str, Any]:
    """Read `hrm_dataset.json` from a built folder or a Hub dataset repo."""
    if _is_local(path_or_repo_id):
        path = Path(path_or_repo_id) / METADATA_FILENAME
        if not path.is_file():
            if (Path(path_or_repo_id) / "config.json").is_file() or (Path(path_or_repo_id) / "model").is_dir():
                raise DatasetLoadError(f"{path_or_repo_id} is a model folder, not a dataset folder "
                                       f"(it has no {METADATA_FILENAME})")
            raise DatasetLoadError(f"{path_or_repo_id} has no {METADATA_FILENAME}; is it an HRM dataset folder?")
    else:
        path = _download_metadata(path_or_repo_id, revision, token)
    try:
        with open(path) as f:
            meta = loads_json(f.read(), str(path))  # a key given twice is refused
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DatasetLoadError(f"{path} is not valid JSON ({_first_line(err)})") from None
    except DuplicateKeyError as err:
        raise DatasetLoadError(str(err)) from None
    if not isinstance(meta, dict):
        raise DatasetLoadError(f"{path} must hold a JSON object, got {type(meta).__name__}")
    return meta


def check_local_split(folder: str | os.PathLike, split: str, meta: dict[str, Any]) -> list[Path]:
    """The parquet shards of `split` in a built folder, each checked to be readable parquet with the
    `inputs` / `labels` columns of the metadata's `seq_len`; one-line `DatasetLoadError` otherwise."""
    data = Path(folder) / DATA_DIR
    files = sorted(data.glob(f"{split}-*.parquet"))
    if not files:
        splits = sorted({p.name.split("-")[0] for p in data.glob("*.parquet")})
        raise DatasetLoadError(f"{folder} has no split {split!r}" + (f"; it has {', '.join(splits)}" if splits
                                                                       else f" (no parquet files in {data})"))
    for file in files:
        try:
            schema = pq.read_schema(file)
        except (pa.ArrowException, OSError) as err:
            raise DatasetLoadError(f"{file} is not a readable parquet file (corrupt or truncated: "
                                   f"{_first_line(err)})") from None
        for column in ("inputs", "labels"):
            if column not in schema.names:
                raise DatasetLoadError(f"{file} has no {column!r} column; is it an HRM dataset?")
            typ = schema.field(column).type
            if pa.types.is_fixed_size_list(typ) and "seq_len" in meta and typ.list_size != meta["seq_len"]:
                raise DatasetLoadError(f"{file}: {column} rows have {typ.list_size} tokens but "
                                       f"{METADATA_FILENAME} says seq_len={meta['seq_len']}")
    return files


def load_hrm_dataset(path_or_repo_id: str | os.PathLike, split: str, **load_kwargs: Any):
    """``(datasets.Dataset, metadata)`` for one split of a built folder or Hub repo.

    Extra keyword arguments go to ``datasets.load_dataset`` (``revision``, ``token``,
    ``cache_dir``...).
    """
    from datasets import load_dataset

    from datasets.exceptions import DatasetGenerationError

    meta = load_hrm_metadata(path_or_repo_id, revision=load_kwargs.get("revision"), token=load_kwargs.get("token"))
    if _is_local(path_or_repo_id):
        check_local_split(path_or_repo_id, split, meta)
        if "cache_dir" not in load_kwargs:
            # datasets 5 can reuse a stale Arrow cache when a folder is rebuilt (observed: a
            # rebuilt folder of the same name loaded the previous build's rows). Key the cache on
            # the exact files so every build gets its own cache.
            load_kwargs["cache_dir"] = _local_cache_dir(Path(path_or_repo_id))
    try:
        ds = load_dataset(os.fspath(path_or_repo_id), split=split, **load_kwargs)
    except DatasetGenerationError as err:  # a shard whose footer reads but whose pages do not
        cause = err.__cause__ or err
        raise DatasetLoadError(f"cannot read split {split!r} of {path_or_repo_id}: {_first_line(cause)}") from None
    return ds, meta


def _local_cache_dir(folder: Path) -> str:
    import hashlib

    import datasets.config

    files = sorted(p for p in folder.rglob("*") if p.is_file() and (p.suffix == ".parquet" or p.name == "README.md"
                                                                     or p.name == METADATA_FILENAME))
    stamp = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    digest = hashlib.sha1(json.dumps(stamp).encode()).hexdigest()[:16]
    return os.path.join(str(datasets.config.HF_DATASETS_CACHE), "hrm_local", digest)


def _column_numpy(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    typ = col.type
    parts = []
    for chunk in col.chunks:
        if pa.types.is_fixed_size_list(typ):
            flat = chunk.flatten()  # respects slice offsets; zero-copy for null-free data
            parts.append(flat.to_numpy(zero_copy_only=False).reshape(-1, typ.list_size))
        else:
            parts.append(chunk.to_numpy(zero_copy_only=False))
    if not parts:
        width = (typ.list_size,) if pa.types.is_fixed_size_list(typ) else ()
        dtype = typ.value_type.to_pandas_dtype() if pa.types.is_fixed_size_list(typ) else typ.to_pandas_dtype()
        return np.zeros((0,) + width, dtype=dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def dataset_arrays(ds, columns: tuple[str, ...] = ("inputs", "labels", "puzzle_identifiers", "group_id")
                   ) -> dict[str, np.ndarray]:
    """Numpy views of a split: ``inputs``/``labels`` uint8 (N, seq_len), ``puzzle_identifiers``
    / ``group_id`` int32 (N,). Zero-copy when the Arrow column is a single chunk and the
    dataset has no indices mapping (after ``select``/``shuffle`` the rows are gathered)."""
    table = ds.data.table if hasattr(ds.data, "table") else ds.data
    out = {name: _column_numpy(table, name) for name in columns}
    indices = getattr(ds, "_indices", None)
    if indices is not None:
        idx = _column_numpy(indices.table if hasattr(indices, "table") else indices, indices.column_names[0])
        out = {k: v[idx] for k, v in out.items()}
    return out


# ----------------------------------------------------------------------------- Hub upload


def push_folder_to_hub(folder: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None,
                       commit_message: str | None = None) -> str:
    """Create the dataset repo (if needed) and upload ``folder``; returns the repo URL.

    Raises ``HubUploadError`` with a one-line message on a missing token, no network, or a
    refused request.
    """
    from huggingface_hub import HfApi, get_token

    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise HubUploadError(f"cannot push to {repo_id}: no Hugging Face token (pass --token, set HF_TOKEN, "
                             "or run `hf auth login`)")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id=repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(folder_path=os.fspath(folder), repo_id=repo_id, repo_type="dataset",
                          commit_message=commit_message or "Upload HRM dataset")
    except Exception as exc:  # network, auth, permission: one clear line, no stack trace
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise HubUploadError(f"cannot push to {repo_id}: {type(exc).__name__}: {first}"[:500]) from exc
    return str(url)


# ----------------------------------------------------------------------------- CLI plumbing


#: How many offending rows / tasks a builder lists before summarising the rest as a count.
MAX_REPORTED = 10


#: Smallest accepted value of the builders' count options (only those a builder has are checked).
MINIMUM_VALUES = {"num_train": 1, "num_test": 1, "num_aug": 0, "subsample_size": 1, "test_subsample_size": 1,
                  "max_tasks": 1, "min_rating": 0, "min_rounds": 0, "max_rounds": 0, "extra_clues": 0,
                  "min_path_length": 0, "size": 1, "num_val": 0, "workers": 1}
#: What a builder writes into its output folder; a non-empty folder holding anything else is refused.
BUILD_OUTPUTS = {DATA_DIR, "README.md", METADATA_FILENAME}


class BuilderArgumentParser(argparse.ArgumentParser):
    """`ArgumentParser` that also checks the values every builder shares before any work starts
    (counts, the output folder, the Hub repo id and token), raising a one-line `ValueError`."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        check_builder_args(namespace)
        return namespace, extras


def check_builder_args(args: argparse.Namespace) -> None:
    for name, minimum in MINIMUM_VALUES.items():
        value = getattr(args, name, None)
        if isinstance(value, int) and value < minimum:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {minimum}, got {value}")
    for name in ("loop_fraction",):
        value = getattr(args, name, None)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1], got {value}")
    for name in ("csv_dir", "arc_dir"):  # a local path (not a Hub repo id) must be an existing folder
        value = getattr(args, name, None)
        if value and (os.path.exists(value) or str(value).startswith((".", "/", "~")) or str(value).count("/") != 1):
            if not os.path.isdir(os.path.expanduser(value)):
                raise ValueError(f"--{name.replace('_', '-')} {value}: no such folder")
    check_output_dir(args.output_dir)
    if args.push_to_hub is not None:
        check_push_target(args.push_to_hub, args.token)


def check_output_dir(output_dir: str | os.PathLike) -> None:
    """The output folder must be creatable, and an existing one must be empty or an earlier build (so a
    typo cannot overwrite the README.md of a project or model folder)."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output-dir {out} is a file, not a folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--output-dir {out}: {parent} is a file, not a folder")
    existing = next((p for p in (out, *out.parents) if p.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--output-dir {out}: no permission to write in {existing}")
    if out.is_dir():
        others = sorted(p.name for p in out.iterdir() if p.name not in BUILD_OUTPUTS)
        if (out / "config.json").is_file():
            raise ValueError(f"--output-dir {out} is a model folder (it holds config.json); choose a new or empty "
                             f"folder")
        if others and not (out / METADATA_FILENAME).is_file():
            raise ValueError(f"--output-dir {out} already holds other files ({others[0]}, ...) and is not a "
                             f"dataset folder; choose a new or empty folder")


def check_push_target(repo_id: str, token: str | None) -> None:
    """A valid `owner/name` Hub dataset repo id and a token, checked before the build, not after it."""
    from huggingface_hub import get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise ValueError(f"--push-to-hub {repo_id!r} is not a valid Hub repo id (owner/name of letters, digits, "
                         f"'-', '_', '.')") from None
    if "/" not in repo_id:
        raise ValueError(f"--push-to-hub {repo_id!r} needs an owner: owner/name")
    if not (token or os.environ.get("HF_TOKEN") or get_token()):
        raise ValueError(f"cannot push to {repo_id}: no Hugging Face token (pass --token, set HF_TOKEN, "
                         "or run `hf auth login`)")


def builder_parser(doc: str) -> argparse.ArgumentParser:
    """The argument parser of a builder script: its module docstring as help, plus the common arguments."""
    parser = BuilderArgumentParser(description=doc.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc)
    add_common_args(parser)
    return parser


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments every builder takes."""
    parser.add_argument("--output-dir", required=True, help="folder to write the dataset to (Hub layout)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (the build is deterministic given it)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                        help="also upload the folder to this Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN / cached login)")
    parser.add_argument("--quiet", action="store_true", help="only print errors and the summary")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")


class Reporter:
    """Prints progress / report lines with elapsed time (to stderr so stdout stays clean)."""

    def __init__(self, quiet: bool = False):
        self.t0 = time.perf_counter()
        self.quiet = quiet
        self.lines: list[str] = []

    def __call__(self, msg: str, always: bool = False) -> None:
        self.lines.append(msg)
        if always or not self.quiet:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def finish(args: argparse.Namespace, report: Reporter, meta: dict[str, Any]) -> None:
    """Print the summary and push when asked."""
    size = folder_size_bytes(args.output_dir)
    rows = ", ".join(f"{k}={v:,}" for k, v in meta["num_rows"].items())
    report(f"wrote {args.output_dir}: {rows} rows, {size / 1e6:.1f} MB", always=True)
    if args.push_to_hub:
        card_for_repo(args.output_dir, args.push_to_hub)
        url = push_folder_to_hub(args.output_dir, args.push_to_hub, private=args.private, token=args.token)
        report(f"pushed to {url}", always=True)


def run_cli(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> int:
    """Run a builder's ``main`` turning expected failures into a one-line error and exit code
    (2: bad input, found before any work; 1: a failure while building or uploading; --debug re-raises)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else [str(a) for a in argv])
    try:
        main(argv)
        return 0
    except (ValueError, FileNotFoundError) as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (HubUploadError, OSError) as exc:  # upload refused, disk full, permission denied: failure during work
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
