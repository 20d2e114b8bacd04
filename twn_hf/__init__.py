"""twn-hf: Think When Needed multimodal embeddings on Hugging Face libraries."""

from twn_hf.build import build_twn
from twn_hf.modeling import TWNConfig, TWNModel

__all__ = ["TWNConfig", "TWNModel", "build_twn"]
__version__ = "0.1.0"
