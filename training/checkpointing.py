"""Checkpoints for exact resume, written atomically, plus an optional EMA of the weights.

Layout of `OUTPUT_DIR/checkpoint-STEP/`:

    model/                      save_pretrained folder (safetensors, config, remote code, generated README card);
                                EMA weights when EMA is on — this is the folder to evaluate, share or fine-tune
    state/                      accelerator.save_state: live weights, optimizer, RNG of every process
    carry-rank{R}.safetensors   the ACT carry of process R (one set of tensors per accumulation slot)
    ema.safetensors             EMA shadow weights (if EMA is on)
    trainer_state.json          step, data-stream position, run layout, config, last metrics, SHA-256 of every
                                file of state/ and the carries (written last)

Everything is written into `checkpoint-STEP.tmp/` and renamed when complete, so a crash at any point leaves the
previous checkpoints intact; `find_latest_checkpoint` ignores `.tmp` folders and folders without
`trainer_state.json`. A resume first checks the folder against its trainer state (`check_resume`): run
layout, architecture, and the recorded digests, so a modified or corrupt RNG state, optimizer or carry file is
refused instead of silently making the resumed run diverge from the uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# Training settings that shape the trajectory: an exact resume needs the ones the checkpoint was written with (the
# step budget, evaluation, saving and logging may change).
TRAJECTORY_KEYS = ("seed", "sampling", "optimizer", "learning_rate", "weight_decay", "beta1", "beta2", "lr_warmup_steps",
                   "lr_min_ratio", "puzzle_emb_lr", "puzzle_emb_weight_decay", "ema_decay", "mixed_precision",
                   "depth_curriculum")
CARRY_FIELDS = ("z_H", "z_L", "steps", "halted", "inputs", "labels", "puzzle_identifiers")
TRAINER_STATE = "trainer_state.json"


class EMA:
    """Exponential moving average of a model's parameters (buffers such as the puzzle table are used as they are).

    `shadow = decay · shadow + (1 − decay) · param` after every optimizer step; `swapped_in(model)` temporarily
    puts the averaged weights into the model (for evaluation and saving).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = {name: p.detach().clone().float() for name, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for name, p in model.named_parameters():
            self.shadow[name].lerp_(p.detach().float(), 1.0 - self.decay)

    @contextlib.contextmanager
    def swapped_in(self, model: torch.nn.Module):
        params = dict(model.named_parameters())
        backup = {name: p.detach().clone() for name, p in params.items()}
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(self.shadow[name])
        try:
            yield model
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(backup[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: t.contiguous() for name, t in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise ValueError(f"EMA state lacks {sorted(missing)[:3]}...")
        for name in self.shadow:
            self.shadow[name].copy_(state[name])


def checkpoint_step(path: str | os.PathLike) -> int | None:
    match = CHECKPOINT_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None and (p / TRAINER_STATE).is_file()]
    return sorted(found, key=checkpoint_step)


def find_latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def resolve_resume_path(resume_from_checkpoint: str, output_dir: str | os.PathLike) -> Path | None:
    """`latest` → newest complete checkpoint in `output_dir` (None if there is none); else the given folder."""
    if resume_from_checkpoint == "latest":
        return find_latest_checkpoint(output_dir)
    path = Path(resume_from_checkpoint)
    if not path.exists():
        raise ValueError(f"--resume_from_checkpoint {resume_from_checkpoint}: no such folder")
    inside = list_checkpoints(path)
    if inside:
        raise ValueError(f"--resume_from_checkpoint {resume_from_checkpoint} is a training output folder; pass one "
                         f"of its checkpoints ({inside[-1].name} is the newest) or 'latest' with --output_dir")
    if not (path / TRAINER_STATE).is_file() or not (path / "state").is_dir():
        raise ValueError(f"--resume_from_checkpoint {resume_from_checkpoint!r} is not a complete checkpoint folder "
                         f"(expected {TRAINER_STATE} and state/ inside)")
    return path


def file_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under `folder` (state/ and the carry files), keyed by relative path."""
    digests = {}
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != TRAINER_STATE):
        digest = hashlib.sha256()
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digests[file.relative_to(folder).as_posix()] = digest.hexdigest()
    return {k: v for k, v in digests.items() if k.startswith("state/") or k.startswith("carry-rank")}


def check_resume(path: Path, *, num_processes: int, global_batch_size: int, gradient_accumulation_steps: int,
                 model_config=None, architecture_keys: tuple = (), dataset: str | None = None,
                 dataset_fingerprint: str | None = None, training: dict | None = None) -> dict:
    """Check that `path` can be resumed exactly by this run, before anything is loaded; returns its trainer state.

    Raises a one-line `ValueError` for a corrupt trainer state, another run layout, model type or model config
    (`architecture_keys`: the config fields compared), other data (`dataset_fingerprint`, `training.data.
    dataset_fingerprint`; a checkpoint written before fingerprints compares the `dataset` it names), other
    trajectory settings (`training`, compared on `TRAJECTORY_KEYS`), a missing carry, or a file of state/ (weights,
    optimizer, RNG) whose digest differs from the one recorded at saving.
    """
    from dataset_scripts.validation import loads_json

    where = f"--resume_from_checkpoint {path}"
    fresh = f"use --init_from {path / 'model'} to start a new run from its weights"
    try:
        state = loads_json((path / TRAINER_STATE).read_text(), TRAINER_STATE)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{where}: {TRAINER_STATE} is corrupt ({getattr(error, 'msg', error)})") from None
    if not isinstance(state, dict):
        raise ValueError(f"{where}: {TRAINER_STATE} is corrupt (not a JSON object)")
    for key in ("step", "global_batch_size", "gradient_accumulation_steps"):
        if not isinstance(state.get(key), int) or isinstance(state.get(key), bool) or state[key] < 0:
            raise ValueError(f"{where}: {TRAINER_STATE} is corrupt ({key!r} missing or not a count)")
    saved_world = state.get("num_processes", 1)
    if saved_world != num_processes:
        raise ValueError(f"{where}: written by {saved_world} processes but this run has {num_processes}; an exact "
                         f"resume needs the same number (the ACT carry and RNG are per process). Use --init_from "
                         f"{path / 'model'} to start a new run from its weights.")
    if (state["global_batch_size"], state["gradient_accumulation_steps"]) != (global_batch_size,
                                                                              gradient_accumulation_steps):
        raise ValueError(f"{where}: used global batch {state['global_batch_size']} × accumulation "
                         f"{state['gradient_accumulation_steps']}; this run has {global_batch_size} × "
                         f"{gradient_accumulation_steps}")
    if model_config is not None and (path / "model" / "config.json").is_file():
        try:
            saved = json.loads((path / "model" / "config.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{where}: model/config.json is not valid JSON") from None
        if saved.get("model_type") != model_config.model_type:
            raise ValueError(f"{where}: a {saved.get('model_type')} checkpoint, but this run trains "
                             f"{model_config.model_type}")
        clashes = {k: (getattr(model_config, k), saved[k]) for k in architecture_keys
                   if k in saved and hasattr(model_config, k) and saved[k] != getattr(model_config, k)}
        if clashes:
            raise ValueError(f"{where}: this run's model differs from the checkpoint's: {clashes} (run, checkpoint)")
    recorded_config = state.get("config") if isinstance(state.get("config"), dict) else {}
    recorded_data = recorded_config.get("dataset")
    if dataset_fingerprint is not None and state.get("dataset_fingerprint") is not None:
        if state["dataset_fingerprint"] != dataset_fingerprint:
            raise ValueError(f"{where}: the checkpoint was trained on other data ({recorded_data}, fingerprint "
                             f"{state['dataset_fingerprint'][:12]}) than --dataset {dataset} (fingerprint "
                             f"{dataset_fingerprint[:12]}); an exact resume needs the same data ({fresh})")
    elif dataset is not None and recorded_data is not None and not _same_dataset(str(recorded_data), str(dataset)):
        raise ValueError(f"{where}: the checkpoint was trained on {recorded_data} (it records no data fingerprint, "
                         f"so only the name can be compared) but this run's --dataset is {dataset}; an exact resume "
                         f"needs the same data ({fresh})")
    recorded_training = recorded_config.get("training") if isinstance(recorded_config.get("training"), dict) else {}
    if training is not None:
        changed = {k: (training.get(k), recorded_training[k]) for k in TRAJECTORY_KEYS
                   if k in recorded_training and training.get(k) != recorded_training[k]}
        if changed:
            raise ValueError(f"{where}: this run's training differs from the checkpoint's: {changed} (run, "
                             f"checkpoint); an exact resume needs the settings it was written with ({fresh})")
    for rank in range(num_processes):
        if not (path / f"carry-rank{rank}.safetensors").is_file():
            raise ValueError(f"{where}: no ACT carry for process {rank} (carry-rank{rank}.safetensors)")
    recorded = state.get("file_sha256")
    if recorded is None:
        warnings.warn(f"{where}: written without file digests (an older checkpoint); its RNG and optimizer state "
                      f"cannot be verified, so the resume is exact only if they are unmodified")
        return state
    found = file_digests(path)
    for name, digest in recorded.items():
        if name not in found:
            raise ValueError(f"{where}: {name} is missing; an exact resume is impossible (use --init_from "
                             f"{path / 'model'} to start a new run from its weights)")
        if found[name] != digest:
            raise ValueError(f"{where}: {name} was modified or corrupted after saving (its SHA-256 differs from "
                             f"the one recorded in {TRAINER_STATE}); an exact resume is impossible (use --init_from "
                             f"{path / 'model'} to start a new run from its weights)")
    return state


def _same_dataset(a: str, b: str) -> bool:
    """The same dataset name: equal text, or two spellings of one local folder."""
    return a == b or (Path(a).exists() and Path(b).exists() and Path(a).resolve() == Path(b).resolve())


def rotate_checkpoints(output_dir: str | os.PathLike, keep: int | None) -> None:
    """Delete all but the newest `keep` complete checkpoints (None or 0 = keep all) and stale `.tmp` folders."""
    root = Path(output_dir)
    for stale in root.glob("checkpoint-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    if not keep:
        return
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _carry_tensors(carries) -> dict[str, torch.Tensor]:
    tensors = {}
    for slot, carry in enumerate(carries):
        if carry is None:
            continue
        for field in CARRY_FIELDS:
            value = getattr(carry, field)
            if value is not None:
                tensors[f"{slot}.{field}"] = value.detach().contiguous().cpu()
    return tensors


def load_carries(path: Path, rank: int, num_slots: int, device) -> list:
    """The carries process `rank` saved (None for a slot that had none yet)."""
    from modeling_hrm import HRMCarry

    file = path / f"carry-rank{rank}.safetensors"
    if not file.is_file():
        raise ValueError(f"checkpoint {path} has no ACT carry for process {rank} ({file.name})")
    tensors = load_file(str(file), device=str(device))
    carries = []
    for slot in range(num_slots):
        fields = {f: tensors.get(f"{slot}.{f}") for f in CARRY_FIELDS}
        carries.append(HRMCarry(**fields) if fields["z_H"] is not None else None)
    return carries


def save_checkpoint(accelerator, output_dir: str | os.PathLike, step: int, *, hrm, carries, trainer_state: dict,
                    ema: EMA | None = None, write_card=None, save_total_limit: int | None = None) -> Path:
    """Write `checkpoint-STEP/` atomically (call on every process). Returns the final folder.

    Args:
        accelerator: the run's `Accelerator` (its prepared model and optimizer are saved by `save_state`).
        hrm: the unwrapped `HRMForPuzzleSolving` (saved with `save_pretrained`, EMA weights swapped in).
        carries: this process's ACT carries, one per gradient-accumulation slot.
        trainer_state: JSON-serialisable run state; written last, it marks the checkpoint complete.
        write_card: `callable(model_dir)` writing the model card README.md into the model folder.
    """
    root = Path(output_dir)
    final = root / f"checkpoint-{step}"
    tmp = root / f"checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()

    accelerator.save_state(str(tmp / "state"), safe_serialization=True)
    save_file(_carry_tensors(carries), str(tmp / f"carry-rank{accelerator.process_index}.safetensors"))
    if accelerator.is_main_process:
        with ema.swapped_in(hrm) if ema is not None else contextlib.nullcontext():
            hrm.save_pretrained(str(tmp / "model"), safe_serialization=True)
        if write_card is not None:
            write_card(tmp / "model")
        if ema is not None:
            save_file(ema.state_dict(), str(tmp / "ema.safetensors"))
    accelerator.wait_for_everyone()

    if accelerator.is_main_process:
        trainer_state = {**trainer_state, "file_sha256": file_digests(tmp)}
        with open(tmp / TRAINER_STATE, "w") as f:
            json.dump(trainer_state, f, indent=2, default=str)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():  # the same step saved again (e.g. a resumed run that stops at once): replace it,
            old = root / f"checkpoint-{step}.old.tmp"  # moving the old one aside first so it is never half-deleted
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        rotate_checkpoints(root, save_total_limit)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path: Path, ema: EMA | None = None, hrm=None) -> dict:
    """Restore model, optimizer and RNG (`accelerator.load_state`) and the EMA; returns the trainer state."""
    with open(path / TRAINER_STATE) as f:
        state = json.load(f)
    saved_world = state.get("num_processes", 1)
    if saved_world != accelerator.num_processes:  # checked by check_resume before; kept for direct callers
        raise ValueError(f"checkpoint {path} was written by {saved_world} processes but this run has "
                         f"{accelerator.num_processes}; an exact resume needs the same number (the ACT carry and RNG "
                         f"are per process). Use --init_from {path / 'model'} to start a new run from its weights.")
    accelerator.load_state(str(path / "state"))
    if ema is not None:
        ema_file = path / "ema.safetensors"
        if ema_file.is_file():
            ema.load_state_dict(load_file(str(ema_file)))
        else:  # EMA switched on for a resumed run: start averaging from the restored weights
            ema.shadow = {n: p.detach().clone().float() for n, p in hrm.named_parameters()}
    return state


def copy_model_folder(src: Path, dst: Path) -> None:
    """Copy a model folder to `dst` atomically (a `.tmp` copy renamed into place)."""
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(src, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)


__all__ = ["EMA", "save_checkpoint", "load_checkpoint", "check_resume", "file_digests", "load_carries", "find_latest_checkpoint", "list_checkpoints",
           "resolve_resume_path", "rotate_checkpoints", "copy_model_folder", "checkpoint_step"]
