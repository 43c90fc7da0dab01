"""Data shipped with DGP Studio: presets, class-name lists, the bundled model."""
