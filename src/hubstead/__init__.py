"""Hubstead: a self-hosted Hugging Face Hub."""

__version__ = "0.1.0"
