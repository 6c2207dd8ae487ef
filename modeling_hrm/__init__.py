"""hrm: the Hierarchical Reasoning Model as a Hugging Face transformers model.

Importing this package registers `HRMConfig` / `HRMForPuzzleSolving` with `AutoConfig` / `AutoModel`
(model type "hrm") and for remote code, so `save_pretrained` folders carry an `auto_map` and load with
`AutoModel.from_pretrained(path, trust_remote_code=True)` where this package is not installed.
"""

from transformers import AutoConfig, AutoModel

from .configuration_hrm import HRMConfig
from .modeling_hrm import HRMCarry, HRMForPuzzleSolving, HRMOutput, HRMPreTrainedModel, HRMSolveOutput

AutoConfig.register("hrm", HRMConfig, exist_ok=True)
AutoModel.register(HRMConfig, HRMForPuzzleSolving, exist_ok=True)
HRMConfig.register_for_auto_class()
HRMForPuzzleSolving.register_for_auto_class("AutoModel")

__all__ = ["HRMConfig", "HRMForPuzzleSolving", "HRMPreTrainedModel", "HRMOutput", "HRMCarry", "HRMSolveOutput"]
