"""The training loop: one optimizer step = one ACT segment on one batch, with deep supervision.

The carry (hidden states, step counts, the example each row holds) persists across optimizer steps; rows that
halted take the example at their row of the incoming batch, the other incoming rows are not used (as the
original). `train` runs the steps, logs `MetricWindow` averages, evaluates, checkpoints and resumes bitwise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import warnings
from pathlib import Path

import torch
import yaml

from training.arguments import ConfigError, RunArguments, config_fields
from training.data import BatchStream, RunPlan, check_arguments, load_data, subsample
from training.optim import build_optimizer, lr_at_step, sign_sgd_puzzle_embedding_step

logger = logging.getLogger("hrm.train")


def build_model(plan: RunPlan):
    """A fresh model of the planned config, or the `--init_from` weights with the planned behaviour keys and the
    puzzle table resized to the dataset's."""
    if plan.init_folder is None:
        return plan.model_class(plan.model_config)
    from modeling_hrm.loading import load_pretrained_model

    model = load_pretrained_model(plan.init_folder, device="cpu")
    wanted = plan.model_config.num_puzzle_identifiers
    for key, value in plan.model_config.to_dict().items():  # behaviour keys (halt_max_steps, loss ...) may change
        if key in config_fields(type(model.config)) and key != "num_puzzle_identifiers":
            setattr(model.config, key, value)
    if model.config.puzzle_emb_ndim > 0 and model.config.num_puzzle_identifiers != wanted:
        warnings.warn(f"--init_from {plan.init_folder}: resizing the puzzle-embedding table from "
                      f"{model.config.num_puzzle_identifiers} to {wanted} identifiers (the dataset's); rows beyond the "
                      f"old table start at zero")
        model.resize_puzzle_embeddings(wanted)
    return model.train()


def truncate_metrics(path: Path, step: int) -> None:
    """Drop records after `step` (written by a run that died after its last checkpoint) before a resume appends."""
    if not path.is_file():
        return
    with open(path) as f:
        kept = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(kept))
    tmp.replace(path)


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer (bytes): equal digests = bitwise-equal models."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _flat(config: dict, prefix: str = "") -> dict:
    """Flatten the config for TensorBoard hparams (values: int, float, str, bool)."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, name + "/"))
        elif isinstance(value, (int, float, str, bool)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


class MetricWindow:
    """Sums of training metrics over the steps since the last log, kept on the device and reduced across
    processes only when read (at logging steps): no host synchronisation in between.

    As the original, accuracies are counted on the rows that halted at this step (finished examples), using the
    labels of the example each row holds (`carry.labels`).
    """

    KEYS = ("loss", "lm_loss", "q_halt_loss", "q_continue_loss", "segments", "halted", "exact", "token", "q_halt_acc",
            "steps")

    def __init__(self, device):
        self.sums = torch.zeros(len(self.KEYS), dtype=torch.float64, device=device)

    @torch.no_grad()
    def add(self, out, accum: int) -> None:
        carry = out.carry
        labels = carry.labels
        valid = labels != -100
        correct = (out.logits.argmax(-1) == labels) & valid
        counts = valid.sum(-1)
        seq_correct = correct.sum(-1) == counts
        token = correct.sum(-1) / counts.clamp_min(1)
        losses = [out.loss, out.lm_loss, out.q_halt_loss]
        losses.append(out.q_continue_loss if out.q_continue_loss is not None else torch.zeros_like(out.loss))
        halted = carry.halted.to(token.dtype)
        per_row = torch.stack([halted, halted * seq_correct, halted * token,
                               halted * ((out.q_halt_logits >= 0) == seq_correct), halted * carry.steps]).sum(-1)
        self.sums[:4] += torch.stack(losses).detach().double() / accum
        self.sums[4] += 1.0 / accum
        self.sums[5:] += per_row.double()

    def read(self, accelerator) -> dict:
        sums = accelerator.reduce(self.sums, reduction="sum") if accelerator.num_processes > 1 else self.sums
        s = dict(zip(self.KEYS, sums.tolist()))
        self.sums.zero_()
        segments = max(s["segments"], 1e-9)  # optimizer steps × processes
        halted = max(s["halted"], 1.0)
        return {"train/loss": s["loss"] / segments, "train/lm_loss": s["lm_loss"] / segments,
                "train/q_halt_loss": s["q_halt_loss"] / segments, "train/q_continue_loss": s["q_continue_loss"] / segments,
                "train/exact_accuracy": s["exact"] / halted, "train/token_accuracy": s["token"] / halted,
                "train/q_halt_accuracy": s["q_halt_acc"] / halted, "train/mean_steps": s["steps"] / halted,
                "train/halted_rows": s["halted"]}


def update_puzzle_table(weight: torch.Tensor, ids: list, grads: list, lr: float, weight_decay: float, *,
                        step_was_skipped: bool, accelerator=None) -> None:
    """Sign-SGD on the puzzle-embedding rows this step used (every process applies everyone's rows).

    Skipped together with the optimizer step when the fp16 loss scaler found inf/NaN gradients, and
    `sign_sgd_puzzle_embedding_step` itself leaves the table untouched on non-finite gradients, so `sign(NaN)`
    never reaches the table.
    """
    if not ids or step_was_skipped:
        return
    ids, grads = torch.cat(ids), torch.cat(grads).float()
    if accelerator is not None and accelerator.num_processes > 1:
        ids, grads = accelerator.gather(ids), accelerator.gather(grads)
    sign_sgd_puzzle_embedding_step(weight, ids, grads, lr, weight_decay)



def train(args: RunArguments, plan: RunPlan | None = None) -> dict:
    """Run training as configured; returns the summary (also printed as one JSON line by the main process).

    `plan` is `check_arguments(args)` (run here when not given): nothing is loaded or written before it passed.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, gather_object, set_seed

    from training import checkpointing, hub

    t = args.training
    plan = plan or check_arguments(args)
    output_dir = Path(t.output_dir)
    accelerator = Accelerator(
        mixed_precision=plan.accelerate_precision or t.mixed_precision, project_dir=str(output_dir),
        log_with="tensorboard" if t.report_to == "tensorboard" else None,
        # Every parameter is in the loss, so no unused-parameter search. No buffer broadcast: the puzzle table (a
        # buffer, up to ~1M × 512 for ARC) gets the same sign-SGD update on every rank from gathered gradients and
        # H_init / L_init never change, so re-sending rank 0's copy at every forward would only cost bandwidth.
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=False, broadcast_buffers=False)])
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.INFO if accelerator.is_main_process else logging.WARNING)
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # its per-file "saved ..." lines drown ours
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the "Writing model shards" bar at every checkpoint
    world, rank, accum = accelerator.num_processes, accelerator.process_index, t.gradient_accumulation_steps
    global_batch, micro_batch = plan.global_batch, plan.micro_batch
    t.global_batch_size = global_batch
    config = args.to_dict()

    train_arrays, test_arrays, meta = load_data(args.data.dataset, t.eval_split)
    num_rows = len(train_arrays["inputs"])
    if num_rows < global_batch:
        raise ValueError(f"the train split has {num_rows} rows, fewer than the global batch {global_batch}")
    stream = BatchStream(train_arrays.get("group_id"), num_rows, global_batch, t.seed, t.sampling,
                         puzzle_identifiers=train_arrays.get("puzzle_identifiers"))
    max_steps = t.max_steps or stream.steps_for_epochs(t.epochs)
    curriculum = None
    if t.depth_curriculum:  # checked again now that max_steps is known (with epochs it is only known here)
        from training.curriculum import check_depth_curriculum, depth_at_step, parse_depth_curriculum

        curriculum = parse_depth_curriculum(t.depth_curriculum)
        try:
            check_depth_curriculum(curriculum, plan.model_config, max_steps)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    if test_arrays is not None:
        test_arrays = subsample(test_arrays, t.eval_max_examples, t.seed)

    set_seed(t.seed)  # identical initial weights on every process
    model = build_model(plan)
    hrm = model
    model.train()
    optimizer = build_optimizer(t.optimizer, hrm.parameters(), t.learning_rate, (t.beta1, t.beta2), t.weight_decay)
    ema = checkpointing.EMA(hrm, t.ema_decay) if t.ema_decay else None
    if t.compile:
        # The segment's tensor work and loss as one graph (fullgraph, static shapes); checks, puzzle-embedding
        # lookup and RNG draws stay eager, so `model` keeps its type, `solve` and the sparse embedding update.
        hrm.compile_segment()
    model, optimizer = accelerator.prepare(model, optimizer)
    device = accelerator.device

    start_step, train_seconds_before = 0, 0.0
    carries: list = [None] * accum
    if plan.resume_path is not None:
        path = plan.resume_path
        state = checkpointing.load_checkpoint(accelerator, path, ema, hrm)
        start_step, train_seconds_before = state["step"], state.get("train_seconds", 0.0)
        carries = checkpointing.load_carries(path, rank, accum, device)
        logger.info("resumed from %s at step %d", path, start_step)
    elif t.resume_from_checkpoint:
        logger.warning("--resume_from_checkpoint latest: no checkpoint in %s yet, starting from scratch", output_dir)
    # Exploration in the ACT halting uses the global RNG: give each process its own stream (after a resume the
    # restored RNG state already is that stream, so only seed when starting fresh).
    if start_step == 0:
        set_seed(t.seed + rank)

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if start_step:
            truncate_metrics(output_dir / "metrics.jsonl", start_step)
        with open(output_dir / "train_config.yaml", "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
    if t.report_to == "tensorboard":
        model_fields = {k: v for k, v in hrm.config.to_dict().items() if k in config_fields(type(hrm.config))}
        accelerator.init_trackers("tensorboard", config=_flat({"training": config["training"], "model": {
            "type": hrm.config.model_type, **model_fields}}))
        if accelerator.is_main_process and not accelerator.trackers:
            logger.warning("TensorBoard tracker unavailable (is tensorboard installed?); metrics go to metrics.jsonl only")

    last_eval: dict = {}
    eval_seconds = 0.0  # spent in evaluations (part of the training wall time until the loop ends)

    def log_metrics(metrics: dict, step: int) -> None:
        accelerator.log(metrics, step=step)
        if accelerator.is_main_process:
            with open(output_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step, **metrics}) + "\n")

    def run_eval(step: int) -> dict:
        from training.evaluation import evaluate_model

        nonlocal eval_seconds
        if test_arrays is None:
            return {}
        start = time.monotonic()
        model.eval()
        # At the training precision: the model's forward_dtype, or Accelerate's autocast as in training.
        with ema.swapped_in(hrm) if ema is not None else contextlib.nullcontext(), accelerator.autocast():
            result = evaluate_model(model, test_arrays, batch_size=t.eval_batch_size, max_steps=t.eval_max_steps,
                                    early_exit=t.eval_early_exit, accelerator=accelerator)
        model.train()
        metrics = {f"eval/{k}": v for k, v in result.items()}
        log_metrics(metrics, step)
        if accelerator.is_main_process:
            logger.info("step %d eval: %s", step, json.dumps(result))
        eval_seconds += time.monotonic() - start
        return result

    def write_card(model_dir: Path, step: int) -> None:
        hub.write_model_card(model_dir, hrm.config, train_config={k: config[k] for k in ("dataset", "model", "training")},
                             dataset_meta=meta, dataset_id=args.data.dataset,
                             eval_results={t.eval_split: last_eval} if last_eval else None,
                             repo_id=t.hub_model_id, step=step, num_parameters=sum(p.numel() for p in hrm.parameters()),
                             base_model=t.init_from)

    def save(step: int, train_seconds: float) -> Path:
        state = {"step": step, "epoch": stream.epoch_at(step), "stream_position": step * global_batch,
                 "global_batch_size": global_batch, "gradient_accumulation_steps": accum, "num_processes": world,
                 "train_seconds": train_seconds, "eval": last_eval, "config": config,
                 "dataset_fingerprint": plan.dataset_fingerprint}
        path = checkpointing.save_checkpoint(accelerator, output_dir, step, hrm=hrm, carries=carries,
                                             trainer_state=state, ema=ema, write_card=lambda d: write_card(d, step),
                                             save_total_limit=t.save_total_limit)
        if accelerator.is_main_process:
            logger.info("saved %s", path)
        return path

    window = MetricWindow(device)
    progress = None
    if accelerator.is_main_process and not t.disable_tqdm:
        from tqdm.auto import tqdm

        progress = tqdm(total=max_steps, initial=start_step, desc="train", dynamic_ncols=True)
    deadline = time.monotonic() + 60 * t.max_train_minutes if t.max_train_minutes else None
    step, stopped_by, last_saved = start_step, "max_steps", None
    run_start = time.monotonic()
    window_start, window_steps = time.monotonic(), 0
    # Zero-copy views of the (read-only) Arrow buffers; rows are gathered by index, never written.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        inputs, labels, pids = (torch.as_tensor(train_arrays[k]) for k in ("inputs", "labels", "puzzle_identifiers"))
    table = hrm.puzzle_embedding

    while step < max_steps:
        rows = torch.from_numpy(stream.global_batch(step).reshape(accum, world, micro_batch)[:, rank])
        lr = lr_at_step(step + 1, t.learning_rate, t.lr_warmup_steps, max_steps, t.lr_min_ratio)
        emb_lr = lr_at_step(step + 1, t.puzzle_emb_lr, t.lr_warmup_steps, max_steps, t.lr_min_ratio)
        emb_ids, emb_grads = [], []
        stage = depth_at_step(curriculum, step, max_steps) if curriculum else None  # None: the model's own depth
        for slot in range(accum):
            index = rows[slot]
            x = inputs[index].to(device, torch.long)
            y = labels[index].to(device, torch.long)
            y.masked_fill_(y == 0, -100)  # dataset label 0 = PAD = not scored
            pid = pids[index].to(device, torch.long)
            sync = contextlib.nullcontext() if slot == accum - 1 else accelerator.no_sync(model)
            depth = hrm.recursion_depth(*stage) if stage else contextlib.nullcontext()
            with sync, depth:
                out = model(x, puzzle_identifiers=pid, labels=y, carry=carries[slot])
                accelerator.backward(out.loss / accum if accum > 1 else out.loss)
            carries[slot] = out.carry
            window.add(out, accum)
            if table is not None and table.local_weight is not None and table.local_weight.grad is not None:
                emb_ids.append(table.local_ids.detach())
                emb_grads.append(table.local_weight.grad.detach())
                table.local_weight = None

        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if emb_ids:
            update_puzzle_table(table.weight, emb_ids, emb_grads, emb_lr, t.puzzle_emb_weight_decay,
                                step_was_skipped=optimizer.step_was_skipped, accelerator=accelerator)
        if ema is not None:
            ema.update(hrm)
        step += 1
        window_steps += 1
        if progress is not None:
            progress.update(1)

        stop_now = False
        if deadline is not None:
            flag = time.monotonic() > deadline
            if world > 1:  # every process must stop at the same step
                flag = accelerator.reduce(torch.tensor([float(flag)], device=device), "sum").item() > 0
            stop_now = flag
        if step % t.logging_steps == 0 or step == max_steps or stop_now:
            metrics = window.read(accelerator)
            elapsed = time.monotonic() - window_start
            metrics.update({"train/lr": lr, "train/epoch": stream.epoch_at(step),
                            "train/steps_per_second": window_steps / max(elapsed, 1e-9),
                            "train/examples_per_second": window_steps * global_batch / max(elapsed, 1e-9)})
            if curriculum:  # the depth of the window's last step
                metrics["train/H_cycles"], metrics["train/L_cycles"] = stage or (hrm.config.H_cycles,
                                                                                 hrm.config.L_cycles)
            log_metrics(metrics, step)
            if progress is not None:
                progress.set_postfix(loss=f"{metrics['train/loss']:.3f}", acc=f"{metrics['train/exact_accuracy']:.3f}",
                                     steps=f"{metrics['train/mean_steps']:.1f}",
                                     it_s=f"{metrics['train/steps_per_second']:.2f}")
            window_start, window_steps = time.monotonic(), 0
        if t.eval_steps and step % t.eval_steps == 0 and step < max_steps and not stop_now:
            last_eval = run_eval(step)
            if t.target_exact_accuracy is not None and last_eval.get("exact_accuracy", 0.0) >= t.target_exact_accuracy:
                stopped_by = "target_exact_accuracy"
                break
        if t.save_steps and step % t.save_steps == 0 and step < max_steps and not stop_now:
            last_saved = save(step, train_seconds_before + time.monotonic() - run_start)
        if stop_now:
            stopped_by = "max_train_minutes"
            break

    if progress is not None:
        progress.close()
    train_seconds = train_seconds_before + time.monotonic() - run_start
    loop_eval_seconds = eval_seconds
    steps_run = step - start_step
    if (step > start_step or not last_eval) and stopped_by != "target_exact_accuracy":  # else just evaluated
        last_eval = run_eval(step)
    final = save(step, train_seconds)
    model_dir = output_dir / "model"
    if accelerator.is_main_process:
        checkpointing.copy_model_folder(final / "model", model_dir)

    digests = gather_object([weights_digest(hrm)])
    summary = {"step": step, "max_steps": max_steps, "epoch": stream.epoch_at(step), "stopped_by": stopped_by,
               "model_type": hrm.config.model_type, "num_processes": world, "global_batch_size": global_batch,
               "train_seconds": round(train_seconds, 3), "eval_seconds": round(loop_eval_seconds, 3),
               "examples_per_second": round(steps_run * global_batch / max(time.monotonic() - run_start, 1e-9), 2),
               "eval": last_eval, "checkpoint": str(final), "model_dir": str(model_dir),
               "weights_sha256": digests, "ranks_in_sync": len(set(digests)) == 1}
    if not summary["ranks_in_sync"]:
        logger.error("processes ended with different weights: %s", digests)
    if world > 1:  # end_training() would destroy the process group, whose teardown can deadlock: see main()
        for tracker in accelerator.trackers:
            tracker.finish()
    else:
        accelerator.end_training()

    if t.push_to_hub and accelerator.is_main_process:
        try:
            summary["pushed"] = hub.push_to_hub(model_dir, t.hub_model_id, private=t.hub_private_repo,
                                                commit_message=f"{hrm.config.model_type.upper()}, step {step}")
        except RuntimeError as error:
            summary["push_error"] = str(error)
    return summary
