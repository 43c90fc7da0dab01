"""Reconstruction presets as TOML data (one file per preset)."""
