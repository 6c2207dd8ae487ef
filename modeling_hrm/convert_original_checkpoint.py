"""Convert a checkpoint of the original HRM code (github.com/sapientinc/HRM) into a `save_pretrained` folder.

The published checkpoints (`sapientinc/HRM-checkpoint-sudoku-extreme`, `-maze-30x30-hard`, `-ARC-2`) hold
`all_config.yaml` and a raw torch state dict `checkpoint` whose keys start with `_orig_mod.model.inner.`.
The config holds no sequence length, so it is passed on the command line (81 Sudoku, 900 maze / ARC).

    python -m modeling_hrm.convert_original_checkpoint --checkpoint checkpoint --config all_config.yaml \
        --seq-len 81 --output hrm-sudoku-extreme

Conversion is strict: every tensor must map to a parameter or buffer of the new model with the same shape,
and none may be left over.
"""

import argparse
import re
import sys
from pathlib import Path

import torch
import yaml

from .configuration_hrm import HRMConfig
from .modeling_hrm import HRMForPuzzleSolving

ORIGINAL_PREFIXES = ("_orig_mod.model.inner.", "model.inner.")

# original name → our name; per-layer names are identical in both layouts
_RENAMES = {
    "H_init": "H_init",
    "L_init": "L_init",
    "embed_tokens.embedding_weight": "embed_tokens.weight",
    "embed_pos.embedding_weight": "embed_pos.weight",
    "puzzle_emb.weights": "puzzle_embedding.weight",
    "lm_head.weight": "lm_head.weight",
    "q_head.weight": "q_head.weight",
    "q_head.bias": "q_head.bias",
}
_LAYER_KEY = re.compile(r"^[HL]_level\.layers\.\d+\.(self_attn\.(qkv_proj|o_proj)|mlp\.(gate_up_proj|down_proj))\.weight$")

# arch fields of all_config.yaml that map one-to-one onto HRMConfig
_ARCH_FIELDS = ("H_cycles", "L_cycles", "H_layers", "L_layers", "hidden_size", "num_heads", "expansion",
                "puzzle_emb_ndim", "pos_encodings", "halt_max_steps", "halt_exploration_prob", "rope_theta",
                "rms_norm_eps")


class ConversionError(ValueError):
    """The checkpoint does not match the original HRM layout (missing, unexpected or mis-shaped tensors)."""


def strip_prefix(state_dict: dict) -> dict:
    """Remove the `_orig_mod.model.inner.` prefix (torch.compile + ACT wrapper + loss head) from every key."""
    stripped = {}
    for key, tensor in state_dict.items():
        for prefix in ORIGINAL_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        stripped[key] = tensor
    return stripped


def rename_key(original_key: str) -> str | None:
    """Our parameter name for an original (prefix-free) key, or None if the key is unknown."""
    if original_key in _RENAMES:
        return _RENAMES[original_key]
    if _LAYER_KEY.match(original_key):
        return original_key
    return None


def config_from_original(arch: dict, state_dict: dict, seq_len: int) -> HRMConfig:
    """HRMConfig from the `arch` section of all_config.yaml; vocab and puzzle-table sizes come from the tensors."""
    if "embed_tokens.embedding_weight" not in state_dict:
        raise ConversionError("checkpoint has no embed_tokens.embedding_weight; is it an HRM checkpoint?")
    fields = {k: arch[k] for k in _ARCH_FIELDS if k in arch}
    fields["vocab_size"] = int(state_dict["embed_tokens.embedding_weight"].shape[0])
    if "puzzle_emb.weights" in state_dict:
        fields["num_puzzle_identifiers"] = int(state_dict["puzzle_emb.weights"].shape[0])
        fields["puzzle_emb_ndim"] = int(state_dict["puzzle_emb.weights"].shape[1])
    else:
        fields["puzzle_emb_ndim"] = 0
    loss_type = (arch.get("loss") or {}).get("loss_type", "stablemax_cross_entropy")
    fields["loss_type"] = "softmax" if "softmax" in loss_type else "stablemax"
    fields["seq_len"] = seq_len
    return HRMConfig(**fields)


def convert_state_dict(original: dict, model: HRMForPuzzleSolving) -> dict:
    """Map an original (prefix-free) state dict onto `model`'s names, checking coverage and shapes."""
    expected = model.state_dict()
    converted, unexpected, mismatched, mismatched_names = {}, [], [], set()
    for key, tensor in original.items():
        new_key = rename_key(key)
        if new_key is None or new_key not in expected:
            unexpected.append(key)
            continue
        if tuple(tensor.shape) != tuple(expected[new_key].shape):
            mismatched.append(f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[new_key].shape)}")
            mismatched_names.add(new_key)
            continue
        converted[new_key] = tensor.to(expected[new_key].dtype)
    missing = sorted(set(expected) - set(converted) - mismatched_names)
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(sorted(unexpected)))
    if mismatched:
        problems.append("shape mismatches: " + "; ".join(mismatched))
    if problems:
        raise ConversionError("checkpoint does not match the HRM layout:\n  " + "\n  ".join(problems))
    return converted


def load_original_checkpoint(path: str | Path) -> dict:
    """Load the raw torch state dict safely (`weights_only=True`) and strip the original prefixes."""
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ConversionError(f"{path} is not a raw state dict of tensors")
    return strip_prefix(state_dict)


def convert(checkpoint: str | Path, config_path: str | Path, seq_len: int) -> HRMForPuzzleSolving:
    """Build an `HRMForPuzzleSolving` holding the weights of an original checkpoint."""
    with open(config_path) as f:
        all_config = yaml.safe_load(f) or {}
    arch = all_config.get("arch", all_config)
    original = load_original_checkpoint(checkpoint)
    config = config_from_original(arch, original, seq_len)
    model = HRMForPuzzleSolving(config)
    model.load_state_dict(convert_state_dict(original, model), strict=True)
    return model.eval()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="raw torch state dict of the original code")
    parser.add_argument("--config", required=True, help="all_config.yaml saved next to the checkpoint")
    parser.add_argument("--seq-len", type=int, required=True, help="grid tokens: 81 (Sudoku), 900 (maze, ARC)")
    parser.add_argument("--output", required=True, help="folder to write with save_pretrained")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also push the converted model to this Hub repo")
    args = parser.parse_args(argv)
    try:
        model = convert(args.checkpoint, args.config, args.seq_len)
    except (ConversionError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    model.save_pretrained(args.output)
    params = sum(p.numel() for p in model.parameters())
    print(f"converted {args.checkpoint} → {args.output} ({params:,} parameters, "
          f"{model.config.num_puzzle_identifiers} puzzle identifiers, vocab {model.config.vocab_size})")
    if args.push_to_hub:
        model.push_to_hub(args.push_to_hub)
    return 0


if __name__ == "__main__":
    sys.exit(main())
