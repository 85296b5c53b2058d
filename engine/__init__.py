"""Latent Explorer's engine: data, models, training, runs and export, with no GUI."""

__version__ = "0.1.0"
