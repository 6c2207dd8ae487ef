"""What the benchmark runners share: build a model from a config, time steps (interleaved between variants, so
that load from other processes on a shared machine hits every variant alike), the machine's dense matmul rate,
and one JSON line per result appended under benchmarks/results/.

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # in a runner: the repository root
    from benchmarks.harness import TrainingStep, build_model, model_config, time_interleaved, write_jsonl

    model = build_model(model_config("hrm", hidden_size=256, seq_len=81, vocab_size=11))
    step = TrainingStep(model, torch.optim.AdamW(model.parameters()), inputs, labels)
    times = time_interleaved({"eager": step}, rounds=8, warmup=2)
    write_jsonl(RESULTS / "bench_model.jsonl", [{"seconds": median(times["eager"])}], command_line(__file__))

FLOPs are counted by `modeling_hrm/flops.py` (the project's one convention), not here.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def sync(device) -> None:
    """Wait for queued device work, so that a timer reads finished work."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device) -> str:
    """The GPU's name, or `cpu xN` with N the torch threads in use."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu x{torch.get_num_threads()}"


def model_config(model_type: str = "hrm", **fields):
    """A config of the given model type (`hrm` / `trm`) with these fields."""
    from modeling_hrm import MODEL_CLASSES

    config_class, _ = MODEL_CLASSES[model_type]
    return config_class(**fields)


def build_model(config, device="cpu", seed: int = 0, train: bool = True):
    """A freshly initialised model for `config` (its class from `config.model_type`), seeded, on `device`."""
    from modeling_hrm import MODEL_CLASSES

    _, model_class = MODEL_CLASSES[config.model_type]
    torch.manual_seed(seed)
    model = model_class(config).to(device)
    return model.train(train)


def matmul_rate(device="cpu", dtype=torch.float32, size: int = 2048, repeats: int = 3) -> float:
    """Dense matmul FLOP/s: the median of `repeats` timings of a size³ product (after one untimed)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times)


class TrainingStep:
    """One optimizer step of deep supervision on a fixed batch: a segment forward with the ACT carry of the
    previous call, backward, optimizer step. Calling it runs the step; `model` may be the model or a compiled
    wrapper of it (`forward` is what gets called), `optimizer` holds the model's parameters."""

    def __init__(self, model, optimizer, inputs, labels, puzzle_identifiers=None, autocast=None):
        self.model, self.optimizer = model, optimizer
        self.inputs, self.labels, self.puzzle_identifiers = inputs, labels, puzzle_identifiers
        self.autocast = autocast
        self.carry = None

    def __call__(self, forward=None) -> None:
        forward = self.model if forward is None else forward
        if self.autocast is not None:
            with self.autocast:
                out = forward(self.inputs, self.puzzle_identifiers, labels=self.labels, carry=self.carry)
        else:
            out = forward(self.inputs, self.puzzle_identifiers, labels=self.labels, carry=self.carry)
        out.loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.carry = out.carry


def timed(fn: Callable[[], object], device="cpu", clock=time.perf_counter) -> float:
    """Seconds (by `clock`) one call of `fn` takes, device work included."""
    sync(device)
    start = clock()
    fn()
    sync(device)
    return clock() - start


def time_interleaved(variants: dict[str, Callable[[], object]], rounds: int, warmup: int = 1, device="cpu",
                     between: Callable[[], object] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each variant: `warmup` untimed calls each (compilation happens there), then `rounds`
    rounds that call every variant once, in turn, the order reversed every other round (so that neither load
    from other processes nor a drift within a round favours one variant). `between` runs after each round
    (e.g. a matmul-rate probe).

    Returns, per variant name, the wall-clock seconds of each round; under "<name>:cpu" the CPU time of this
    process in the same calls (all its threads: the work done, which waiting for a core does not add to); under
    "<name>:first" the first warm-up call (with compilation: the compile time)."""
    times: dict[str, list[float]] = {}
    for name, fn in variants.items():
        times[name], times[f"{name}:cpu"] = [], []
        for i in range(warmup):
            seconds = timed(fn, device)
            if i == 0:
                times[f"{name}:first"] = [seconds]
    names = list(variants)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            cpu = time.process_time()
            times[name].append(timed(variants[name], device))
            times[f"{name}:cpu"].append(time.process_time() - cpu)
        if between is not None:
            between()
    return times


def paired_ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """Median over rounds of slow / fast: each round's two calls ran close together, under the same load."""
    return statistics.median(a / b for a, b in zip(times[slow], times[fast]))


def command_line(script: str, argv: list[str] | None = None) -> str:
    """The command that reproduces this run: `python benchmarks/<script> <args>`."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"benchmarks/{Path(script).name}", *args])


def write_jsonl(path, records: list[dict], command: str | None = None) -> list[dict]:
    """Append each record (with the command, if given) as one JSON line to `path` and print it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for record in records:
            if command is not None:
                record["command"] = command
            line = json.dumps(record)
            print(line, flush=True)
            f.write(line + "\n")
    return records


def write_json(path, record: dict | list, command: str | None = None) -> dict | list:
    """Write one record (or a list of them) as an indented JSON file (the runners that keep one result file per
    setting); `command`, if given, is added to the record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if command is not None:
        record["command"] = command
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record
