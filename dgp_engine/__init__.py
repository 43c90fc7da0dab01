"""DGP engine."""
