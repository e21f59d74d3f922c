"""specc: a compiler from declarative neural-network specs to standalone PyTorch code."""

__version__ = "0.1.0"
