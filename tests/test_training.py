"""End-to-end tests of training/train.py on a tiny 4×4 Sudoku set (CPU, subprocesses).

Covers: the loss goes down; checkpoints (atomic, keep-last-K, AutoModel round trip, model card); exact resume
after `kill -9`; two CPU processes (gloo) end in sync and update the puzzle table like one process on the same
global batch; fine-tuning with a resized puzzle table; the wall-clock budget; push_to_hub up to the upload call;
the saved train_config.yaml round trip; a tampered checkpoint refused without touching earlier checkpoints; TRM.
"""

import json
import math
import os
import signal
import socket
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from training_fixtures import PYTHON, REPO, TINY_TRM, TRAIN, run_train, subprocess_env, tiny_args, write_tiny_sudoku


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_tiny_sudoku(tmp_path_factory.mktemp("data") / "sudoku4")


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """60 steps, checkpoints every 20 (keep 2), eval every 30."""
    out = tmp_path_factory.mktemp("run") / "out"
    summary, _ = run_train(tiny_args(dataset, out, "--max_steps", "60", "--save_steps", "20", "--save_total_limit",
                                     "2", "--eval_steps", "30", "--report_to", "tensorboard"))
    return summary, out


def read_jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_loss_goes_down(trained):
    summary, out = trained
    records = [r for r in read_jsonl(out / "metrics.jsonl") if "train/loss" in r]
    assert [r["step"] for r in records] == list(range(1, 61))
    first = sum(r["train/loss"] for r in records[:5]) / 5
    last = sum(r["train/loss"] for r in records[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    evals = [r for r in read_jsonl(out / "metrics.jsonl") if "eval/exact_accuracy" in r]
    assert [r["step"] for r in evals] == [30, 60]
    assert evals[-1]["eval/token_accuracy"] > 0.5  # blanks are 6 of 16 cells: copying clues alone gives 0.625
    assert summary["step"] == 60 and summary["num_processes"] == 1 and summary["stopped_by"] == "max_steps"

    # The same scalars reach TensorBoard through Accelerate's tracker.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard")).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == list(range(1, 61))
    assert events.Scalars("eval/exact_accuracy")[-1].step == 60


def test_checkpoints_rotate_and_round_trip_through_automodel(trained):
    import modeling_hrm  # noqa: F401  (registers AutoModel)
    from transformers import AutoModel

    from training.evaluation import evaluate_model

    summary, out = trained
    names = sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint"))
    assert names == ["checkpoint-40", "checkpoint-60"]  # keep-last-2, no .tmp left behind
    ckpt = out / "checkpoint-60"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["step"] == 60 and state["stream_position"] == 60 * 16

    model = AutoModel.from_pretrained(ckpt / "model", dtype=torch.float32)
    assert type(model).__name__ == "HRMForPuzzleSolving"
    live = load_file(str(ckpt / "state" / "model.safetensors"))  # the weights resume uses (no EMA in this run)
    loaded = model.state_dict()
    assert set(live) == set(loaded)
    for name, tensor in live.items():
        assert torch.equal(loaded[name], tensor), name
    assert model.config.num_puzzle_identifiers == 8 and model.config.hidden_size == 32

    # The saved model reproduces the run's final evaluation.
    from dataset_scripts.common import dataset_arrays, load_hrm_dataset

    test_ds, _ = load_hrm_dataset(str(summary_dataset(out)), "test")
    result = evaluate_model(model, dataset_arrays(test_ds), batch_size=32)
    assert result["exact_accuracy"] == summary["eval"]["exact_accuracy"]
    assert result["token_accuracy"] == pytest.approx(summary["eval"]["token_accuracy"])

    card = (ckpt / "model" / "README.md").read_text()
    assert "model-index" in card and "Exact accuracy" in card and "4×4 Sudoku" in card
    assert (out / "model" / "model.safetensors").is_file()  # final model copied next to the checkpoints


def summary_dataset(out):
    import yaml

    return yaml.safe_load((out / "train_config.yaml").read_text())["dataset"]


def _state(ckpt):
    tensors = {f"state.{k}": v for k, v in load_file(str(ckpt / "state" / "model.safetensors")).items()}
    tensors.update({f"model.{k}": v for k, v in load_file(str(ckpt / "model" / "model.safetensors")).items()})
    tensors.update({f"carry.{k}": v for k, v in load_file(str(ckpt / "carry-rank0.safetensors")).items()})
    return tensors


def test_resume_after_kill_matches_straight_run(dataset, tmp_path):
    """N steps straight == a run killed (SIGKILL) after its N/2 checkpoint + `--resume_from_checkpoint latest`.

    With EMA and gradient accumulation (2 carries) so that their state is covered too.
    """
    n = 60
    common = ("--max_steps", str(n), "--save_steps", str(n // 4), "--save_total_limit", "0", "--eval_steps",
              str(n // 2), "--ema_decay", "0.9", "--gradient_accumulation_steps", "2")
    straight, _ = run_train(tiny_args(dataset, tmp_path / "straight", *common))
    assert straight["step"] == n

    out = tmp_path / "killed"
    proc = subprocess.Popen([PYTHON, TRAIN, *tiny_args(dataset, out, *common)], cwd=REPO, env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = out / f"checkpoint-{n // 2}" / "trainer_state.json"
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished (or died) before it could be killed:\n" + proc.stderr.read().decode()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / f"checkpoint-{n}").exists()
    # Leftovers of a crash mid-write must be ignored by `latest`.
    (out / "checkpoint-999.tmp" / "state").mkdir(parents=True)

    resumed, result = run_train(tiny_args(dataset, out, *common, "--resume_from_checkpoint", "latest"))
    assert "resumed from" in result.stderr
    assert resumed["step"] == n
    a, b = _state(tmp_path / "straight" / f"checkpoint-{n}"), _state(out / f"checkpoint-{n}")
    assert set(a) == set(b)
    for name in a:
        assert torch.allclose(a[name].double(), b[name].double(), rtol=0, atol=1e-6), name
    assert resumed["eval"] == straight["eval"]
    train_steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl") if "train/loss" in r]
    assert train_steps == list(range(1, n + 1))  # records past the checkpoint from the killed run were dropped
    lines = {r["step"]: r for r in read_jsonl(out / "metrics.jsonl") if "train/loss" in r}
    straight_lines = {r["step"]: r for r in read_jsonl(tmp_path / "straight" / "metrics.jsonl") if "train/loss" in r}
    assert lines[n]["train/loss"] == pytest.approx(straight_lines[n]["train/loss"], abs=1e-6)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_stay_in_sync_and_match_one_process(dataset, tmp_path):
    args = ("--lr_warmup_steps", "0", "--save_steps", "1", "--save_total_limit", "0", "--puzzle_emb_lr", "0.05")
    env = subprocess_env()
    env["ACCELERATE_USE_CPU"] = "1"
    launcher = [PYTHON, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port())]
    two, _ = run_train(tiny_args(dataset, tmp_path / "two", "--max_steps", "2", *args), launcher=launcher, env=env,
                       timeout=240)
    assert two["num_processes"] == 2  # the world size really is 2
    assert two["ranks_in_sync"] and len(two["weights_sha256"]) == 2 and len(set(two["weights_sha256"])) == 1
    one, _ = run_train(tiny_args(dataset, tmp_path / "one", "--max_steps", "1", *args))
    assert one["num_processes"] == 1

    # After step 1 (same initial weights, same global batch split over the two ranks) the updates agree.
    w2 = load_file(str(tmp_path / "two" / "checkpoint-1" / "state" / "model.safetensors"))
    w1 = load_file(str(tmp_path / "one" / "checkpoint-1" / "state" / "model.safetensors"))
    table = "puzzle_embedding.weight"
    assert w1[table][1:].abs().min() > 0  # every used row moved (ids 1..7 are all in the batch); row 0 unused
    assert torch.equal(w1[table][0], torch.zeros_like(w1[table][0]))
    torch.testing.assert_close(w2[table], w1[table], rtol=0, atol=1e-6)
    for name in w1:
        torch.testing.assert_close(w2[name], w1[name], rtol=1e-4, atol=1e-5, msg=name)


def test_init_from_resizes_puzzle_table(trained, tmp_path):
    _, source_run = trained
    bigger = write_tiny_sudoku(tmp_path / "sudoku4_12ids", num_puzzle_ids=12, seed=1)
    summary, result = run_train(tiny_args(bigger, tmp_path / "ft", "--max_steps", "1", "--puzzle_emb_lr", "0",
                                          "--init_from", str(source_run / "checkpoint-60")))
    assert "resizing the puzzle-embedding table from 8 to 12" in result.stderr
    source = load_file(str(source_run / "checkpoint-60" / "model" / "model.safetensors"))["puzzle_embedding.weight"]
    tuned = load_file(str(tmp_path / "ft" / "model" / "model.safetensors"))["puzzle_embedding.weight"]
    assert tuned.shape == (12, 32)
    assert torch.equal(tuned[:8], source)  # puzzle lr 0: old rows kept exactly
    assert torch.equal(tuned[8:], torch.zeros(4, 32))
    config = json.loads((tmp_path / "ft" / "model" / "config.json").read_text())
    assert config["num_puzzle_identifiers"] == 12


def test_saved_train_config_round_trips(trained):
    """Loading the run's train_config.yaml gives back the same arguments (and the same file)."""
    import yaml

    from training.train import parse_arguments

    _, out = trained
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    again = parse_arguments(["--config", str(out / "train_config.yaml")])
    assert again.to_dict() == saved
    assert saved["model"]["type"] == "hrm" and saved["model"]["hidden_size"] == 32
    assert saved["training"]["max_steps"] == 60 and saved["training"]["save_total_limit"] == 2


def test_failed_resume_of_tampered_rng_state_refuses_and_keeps_checkpoints(trained, dataset, tmp_path, capsys):
    """A checkpoint whose RNG state was modified cannot resume exactly: exit 2 with one line, nothing written.
    (That untampered checkpoints verify and resume exactly is test_resume_after_kill_matches_straight_run.)"""
    import hashlib
    import shutil

    from training.train import main

    _, source = trained
    out = tmp_path / "run"
    shutil.copytree(source, out)
    rng = out / "checkpoint-60" / "state" / "random_states_0.pkl"
    rng.write_bytes(rng.read_bytes()[:-8] + bytes(8))  # same size, different state

    def snapshot():
        return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file()}

    before = snapshot()
    code = main(tiny_args(dataset, out, "--max_steps", "80", "--save_steps", "20", "--save_total_limit", "1",
                          "--resume_from_checkpoint", "latest"))
    err = capsys.readouterr().err
    assert code == 2 and "random_states_0.pkl was modified or corrupted" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot() == before  # no checkpoint deleted (save_total_limit 1), nothing overwritten

    (out / "checkpoint-60" / "trainer_state.json").write_text('{"step": 60, "global_batch_size": ')
    assert main(tiny_args(dataset, out, "--max_steps", "80", "--resume_from_checkpoint",
                          str(out / "checkpoint-60"))) == 2
    assert "trainer_state.json is corrupt" in capsys.readouterr().err


def test_init_from_rejects_architecture_clash(trained, dataset, tmp_path):
    from training.train import ConfigError, check_arguments, parse_arguments

    _, source_run = trained
    args = parse_arguments(tiny_args(dataset, tmp_path / "ft", "--max_steps", "1", "--init_from",
                                     str(source_run / "checkpoint-60"), model={"hidden_size": 64}))
    with pytest.raises(ConfigError, match="hidden_size.*architecture keys must match"):
        check_arguments(args, num_processes=1)
    args.model.hidden_size = None  # behaviour keys may change when fine-tuning
    assert check_arguments(args, num_processes=1).model_config.halt_max_steps == 3
    assert not (tmp_path / "ft").exists()


def test_tiny_trm_trains_in_bf16_with_ema_and_fine_tunes(dataset, tmp_path):
    """model.type trm: TRM trains with EMA (as the TRM recipes) in the original's bf16 (forward_dtype bfloat16),
    saves the EMA weights, and --init_from dispatches on the saved model type."""
    import modeling_hrm  # noqa: F401
    from transformers import AutoModel

    straight, _ = run_train(tiny_args(dataset, tmp_path / "trm", "--max_steps", "8", "--save_steps", "4",
                                      "--ema_decay", "0.9", "--mixed_precision", "bf16", base=TINY_TRM))
    assert straight["model_type"] == "trm" and straight["step"] == 8
    losses = [r["train/loss"] for r in read_jsonl(tmp_path / "trm" / "metrics.jsonl") if "train/loss" in r]
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses)
    model = AutoModel.from_pretrained(tmp_path / "trm" / "model", dtype=torch.float32)
    assert type(model).__name__ == "TRMForPuzzleSolving" and model.config.puzzle_emb_len == 1
    assert model.config.forward_dtype == "bfloat16"
    ckpt = tmp_path / "trm" / "checkpoint-8"
    ema, saved = load_file(str(ckpt / "ema.safetensors")), load_file(str(ckpt / "model" / "model.safetensors"))
    live = load_file(str(ckpt / "state" / "model.safetensors"))
    name = next(k for k in ema if k in saved)
    assert torch.equal(saved[name], ema[name]) and not torch.equal(saved[name], live[name])  # the model is the EMA

    # Fine-tune without naming the type: the saved config says trm; fp32 now, as mixed_precision says.
    summary, _ = run_train(["--dataset", str(dataset), "--output_dir", str(tmp_path / "ft"), "--max_steps", "1",
                            "--global_batch_size", "16", "--report_to", "none", "--disable_tqdm",
                            "--init_from", str(ckpt), "--halt_max_steps", "2"])
    assert summary["model_type"] == "trm"
    config = json.loads((tmp_path / "ft" / "model" / "config.json").read_text())
    assert config["halt_max_steps"] == 2 and config["forward_dtype"] == "float32"


def test_time_budget_stops_cleanly_and_push_without_token_fails_clearly(dataset, tmp_path):
    env = subprocess_env()
    env.pop("HF_TOKEN", None)
    env["HF_HOME"] = str(tmp_path / "hf_home")  # no stored token either
    out = tmp_path / "budget"
    proc = subprocess.run([PYTHON, TRAIN, *tiny_args(dataset, out, "--max_steps", "100000", "--max_train_minutes",
                                                     "0.0001", "--push_to_hub", "--hub_model_id", "someone/hrm-test")],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 1
    assert "no Hugging Face token" in proc.stderr
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["stopped_by"] == "max_train_minutes" and summary["step"] < 100000
    assert (out / f"checkpoint-{summary['step']}" / "trainer_state.json").is_file()
    assert (out / "model" / "config.json").is_file()  # the folder stays for a later push


def test_push_to_hub_uploads_a_complete_loadable_folder(trained, monkeypatch, tmp_path):
    import yaml
    from huggingface_hub import HfApi
    from transformers import AutoModel

    import modeling_hrm  # noqa: F401
    from training import hub

    _, out = trained
    calls = {}

    def fake_create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = (repo_id, kwargs)

    def fake_upload_folder(self, *, folder_path, repo_id, **kwargs):
        calls["upload_folder"] = (folder_path, repo_id, kwargs)
        # What would be uploaded: copy it aside and check it loads and carries a complete card.
        import shutil

        shutil.copytree(folder_path, tmp_path / "uploaded")
        return "https://huggingface.co/someone/hrm-test/commit/abc"

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", fake_upload_folder)
    url = hub.push_to_hub(out / "model", "someone/hrm-test", token="hf_fake")
    assert url.endswith("/commit/abc")
    assert calls["create_repo"][0] == "someone/hrm-test" and calls["upload_folder"][1] == "someone/hrm-test"

    uploaded = tmp_path / "uploaded"
    assert {"config.json", "model.safetensors", "README.md", "modeling_hrm.py", "configuration_hrm.py"} <= {
        p.name for p in uploaded.iterdir()}
    model = AutoModel.from_pretrained(uploaded, dtype=torch.float32)
    assert model.config.seq_len == 16
    card = (uploaded / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    results = header["model-index"][0]["results"][0]
    metrics = {m["name"]: m["value"] for m in results["metrics"]}
    assert set(metrics) == {"Exact accuracy", "Token accuracy", "Mean ACT steps", "Q-halt accuracy"}
    assert results["dataset"]["split"] == "test"
    for section in ("## Intended use", "## Limitations", "## Training data", "Full training configuration"):
        assert section in card

    def offline(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve 'huggingface.co'")

    monkeypatch.setattr(HfApi, "create_repo", offline)
    with pytest.raises(RuntimeError, match="failed: ConnectionError.*push it later"):
        hub.push_to_hub(out / "model", "someone/hrm-test", token="hf_fake")
    with pytest.raises(ValueError, match="hub_model_id"):
        hub.push_to_hub(out / "model", "not a repo id", token="hf_fake")
    with pytest.raises(ValueError, match="incomplete"):
        hub.push_to_hub(tmp_path, "someone/hrm-test", token="hf_fake")


def test_the_model_card_names_the_split_that_was_evaluated(dataset, tmp_path):
    """Training evaluated on validation (training.eval_split): the card must not call those figures test."""
    import shutil

    data = tmp_path / "with_validation"
    shutil.copytree(dataset, data)
    shutil.copy(data / "data" / "test-00000-of-00001.parquet", data / "data" / "validation-00000-of-00001.parquet")
    meta = json.loads((data / "hrm_dataset.json").read_text())
    meta["num_rows"]["validation"] = meta["num_rows"]["test"]
    (data / "hrm_dataset.json").write_text(json.dumps(meta))
    (data / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n" + "".join(
        f"  - split: {s}\n    path: data/{s}-*.parquet\n" for s in ("train", "test", "validation")) + "---\n# tiny\n")
    out = tmp_path / "out"
    run_train(tiny_args(data, out, "--max_steps", "2", "--eval_split", "validation"))
    card = (out / "model" / "README.md").read_text()
    assert "split: validation" in card and "| validation | Exact accuracy |" in card
    assert "split: test" not in card and "| test |" not in card
