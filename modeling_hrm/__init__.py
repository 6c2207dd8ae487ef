"""hrm: the Hierarchical Reasoning Model (HRM) and the Tiny Recursive Model (TRM) as Hugging Face
transformers models.

Importing this package registers `HRMConfig` / `HRMForPuzzleSolving` (model type "hrm") and `TRMConfig` /
`TRMForPuzzleSolving` ("trm") with `AutoConfig` / `AutoModel` and for remote code, so `save_pretrained` folders
carry an `auto_map` and load with `AutoModel.from_pretrained(path, trust_remote_code=True)` where this package
is not installed.
"""

from transformers import AutoConfig, AutoModel

from .configuration_hrm import HRMConfig, RecursiveReasoningConfig
from .configuration_trm import TRMConfig
from .modeling_hrm import HRMForPuzzleSolving, HRMPreTrainedModel
from .modeling_recursive import HRMCarry, HRMOutput, HRMSolveOutput, RecursiveReasoningModel
from .modeling_trm import TRMForPuzzleSolving, TRMPreTrainedModel

# model_type → (config class, model class): what downstream code dispatches on.
MODEL_CLASSES = {"hrm": (HRMConfig, HRMForPuzzleSolving), "trm": (TRMConfig, TRMForPuzzleSolving)}

for _model_type, (_config_class, _model_class) in MODEL_CLASSES.items():
    AutoConfig.register(_model_type, _config_class, exist_ok=True)
    AutoModel.register(_config_class, _model_class, exist_ok=True)
    _config_class.register_for_auto_class()
    _model_class.register_for_auto_class("AutoModel")

# The `puzzle-solving` pipeline (pipeline_puzzle_solving.py): `pipeline("puzzle-solving", model=...)`.
from .pipeline_puzzle_solving import PuzzleSolvingPipeline, register_pipeline  # noqa: E402

register_pipeline()

__all__ = ["HRMConfig", "HRMForPuzzleSolving", "HRMPreTrainedModel", "TRMConfig", "TRMForPuzzleSolving",
           "TRMPreTrainedModel", "RecursiveReasoningConfig", "RecursiveReasoningModel", "HRMOutput", "HRMCarry",
           "HRMSolveOutput", "MODEL_CLASSES", "PuzzleSolvingPipeline"]
