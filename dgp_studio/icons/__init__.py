"""The app icon (also installed for the desktop entry)."""
