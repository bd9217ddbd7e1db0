"""Foundations every stage uses: errors, TOML configs, atomic files, counter-based random numbers."""
