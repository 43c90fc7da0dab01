"""DGP Studio: the Qt application."""
