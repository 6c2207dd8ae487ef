"""Hub push code path up to the network boundary, and the loading helpers."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import load_dataset

from dataset_scripts import common
from dataset_scripts.build_sudoku_dataset import main as build_sudoku

REPO = Path(__file__).resolve().parents[1]
ARGS = ["--size", "4", "--num-train", "4", "--num-test", "2", "--num-aug", "1", "--quiet"]


def test_push_calls_create_repo_and_upload_folder_with_a_loadable_folder(tmp_path, monkeypatch):
    import huggingface_hub

    calls = {}

    def fake_create_repo(self, repo_id, repo_type=None, private=False, exist_ok=False, **kw):
        calls["create"] = dict(repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=exist_ok,
                               token=self.token)
        return f"https://hub.example/datasets/{repo_id}"

    def fake_upload_folder(self, folder_path, repo_id, repo_type=None, **kw):
        calls["upload"] = dict(folder_path=folder_path, repo_id=repo_id, repo_type=repo_type)
        # what would be uploaded must be a complete dataset repo on its own
        copy = tmp_path / "uploaded"
        import shutil

        shutil.copytree(folder_path, copy)
        calls["splits"] = {s: load_dataset(str(copy), split=s).num_rows for s in ("train", "test")}

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", fake_upload_folder)
    out = tmp_path / "ds"
    meta = build_sudoku(["--output-dir", str(out), "--push-to-hub", "me/sudoku-4x4", "--private",
                         "--token", "hf_secret"] + ARGS)
    assert calls["create"] == dict(repo_id="me/sudoku-4x4", repo_type="dataset", private=True, exist_ok=True,
                                   token="hf_secret")
    assert calls["upload"] == dict(folder_path=str(out), repo_id="me/sudoku-4x4", repo_type="dataset")
    assert calls["splits"] == meta["num_rows"]
    assert "hf_secret" not in (out / "README.md").read_text() and "hf_secret" not in meta["build_command"]
    assert "--token" in meta["build_command"]


def test_missing_token_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    rc = common.run_cli(build_sudoku, ["--output-dir", str(tmp_path / "d"), "--push-to-hub", "me/x"] + ARGS)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2  # bad usage, found before the build starts
    assert err[-1].startswith("error: cannot push to me/x: no Hugging Face token")
    assert not (tmp_path / "d").exists()


def test_network_failure_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    def offline(self, *a, **kw):
        raise ConnectionError("Failed to resolve 'huggingface.co'\nlong details")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", offline)
    rc = common.run_cli(build_sudoku, ["--output-dir", str(tmp_path / "d"), "--push-to-hub", "me/x",
                                       "--token", "t"] + ARGS)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1] == "error: cannot push to me/x: ConnectionError: Failed to resolve 'huggingface.co'"


def test_real_client_against_unreachable_endpoint_fails_cleanly(tmp_path):
    """The real huggingface_hub upload path, pointed at a closed local port: no traceback."""
    env = {**__import__("os").environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "hf_x",
           "HF_HUB_DISABLE_XET": "1", "HF_HUB_ETAG_TIMEOUT": "2", "HF_HUB_DOWNLOAD_TIMEOUT": "2"}
    r = subprocess.run([sys.executable, "-m", "dataset_scripts.build_sudoku_dataset", "--output-dir",
                        str(tmp_path / "d"), "--push-to-hub", "me/x"] + ARGS, cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot push to me/x:") and "Traceback" not in r.stderr


def test_dataset_arrays_zero_copy_and_after_select(tmp_path):
    out = tmp_path / "ds"
    build_sudoku(["--output-dir", str(out)] + ARGS)
    ds, meta = common.load_hrm_dataset(out, "train")
    arr = common.dataset_arrays(ds)
    assert arr["inputs"].dtype == np.uint8 and arr["inputs"].shape == (ds.num_rows, meta["seq_len"])
    assert arr["puzzle_identifiers"].dtype == np.int32 and arr["group_id"].dtype == np.int32
    assert np.array_equal(arr["inputs"][3], np.array(ds[3]["inputs"], dtype=np.uint8))
    sub = ds.select([5, 1])
    sarr = common.dataset_arrays(sub)
    assert np.array_equal(sarr["inputs"], arr["inputs"][[5, 1]])
    assert np.array_equal(sarr["group_id"], arr["group_id"][[5, 1]])


def test_rebuild_into_same_folder_is_not_served_from_a_stale_cache(tmp_path):
    out = tmp_path / "ds"
    build_sudoku(["--output-dir", str(out), "--seed", "1"] + ARGS)
    first = common.dataset_arrays(common.load_hrm_dataset(out, "test")[0])["inputs"].copy()
    build_sudoku(["--output-dir", str(out), "--seed", "2"] + ARGS)
    second = common.dataset_arrays(common.load_hrm_dataset(out, "test")[0])["inputs"]
    assert not np.array_equal(first, second)
    assert len(list((out / "data").glob("*.parquet"))) == 2  # old shards replaced, not mixed


def test_missing_metadata_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="hrm_dataset.json"):
        common.load_hrm_metadata(tmp_path)
