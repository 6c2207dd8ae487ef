"""Training and evaluation of HRM.

- `training/train.py`: the Accelerate training script (deep supervision + ACT, resume, fine-tuning, Hub push),
  over `training.arguments` (options, YAML, `--set`) <- `training.data` (checks before any work, dataset
  loading, the `BatchStream` sampler) <- `training.loop` (the training step and loop).
- `training.optim`: Adam-atan2, sign-SGD for the puzzle-embedding table, warm-up + cosine schedule.
- `training.checkpointing`: atomic checkpoints, keep-last-K, exact resume, EMA.
- `training.hub`: model cards from `model_cards/` templates and `push_to_hub`.
- `training.curriculum`: the depth curriculum (recursion depth grown during training).
- `training.evaluation` (metrics, solving a split, per-segment views) <- `training.evaluation_report` (what
  `hrm-evaluate` reports: checkpoints, candidate curves, search grids, TRM's vote over a run's checkpoints) <-
  `training/hrm_evaluate.py` (the command).
- `training.analysis_stats` (participation ratio, convergence, calibration, PCA) <- `training.analysis_report`
  (plots, summary) <- `training.analysis` (`analyze`) <- `training/hrm_analyze.py` (the `hrm-analyze` command).
"""
