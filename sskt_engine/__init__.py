"""SSKT Studio's engine: everything that computes. Never imports Qt."""

__version__ = "0.1.0"
