"""Spaces: apps in repos of type ``space``, built and run by the hub (config, environments, supervisor, proxy)."""
