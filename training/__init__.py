"""Training and evaluation of HRM.

- `training/train.py`: the Accelerate training script (deep supervision + ACT, resume, fine-tuning, Hub push),
  over `training.arguments` (options, YAML, `--set`) <- `training.data` (checks before any work, dataset
  loading, the `BatchStream` sampler) <- `training.loop` (the training step and loop).
- `training.optim`: Adam-atan2, sign-SGD for the puzzle-embedding table, warm-up + cosine schedule.
- `training.checkpointing`: atomic checkpoints, keep-last-K, exact resume, EMA.
- `training.hub`: model cards from `model_cards/` templates and `push_to_hub`.
- `training.evaluation` / `training/hrm_evaluate.py`: metrics and the `hrm-evaluate` command.
"""
