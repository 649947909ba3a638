"""geosensord: the service (config, events, S2 index, pipeline, sources, CLI)."""

__version__ = "0.1.0"
