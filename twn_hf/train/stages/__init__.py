"""The four stages of the TWN recipe (DESIGN.md §2), one module each."""

from twn_hf.train.stages.embed import EmbedStage
from twn_hf.train.stages.gate import GateStage
from twn_hf.train.stages.rl import RLStage
from twn_hf.train.stages.sft import SFTStage

STAGES = {"sft": SFTStage, "embed": EmbedStage, "gate": GateStage, "rl": RLStage}

__all__ = ["STAGES", "SFTStage", "EmbedStage", "GateStage", "RLStage"]
