"""Runs of the engine on networks: the config, the crash-safe run store, the pipeline
and sweeps."""
