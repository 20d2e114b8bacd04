"""The TWN remote code. These files are copied verbatim into every checkpoint."""

from .configuration_twn import TWNConfig
from .modeling_twn import TWNModel

__all__ = ["TWNConfig", "TWNModel"]
