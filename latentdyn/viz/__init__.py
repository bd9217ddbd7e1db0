"""Pictures and films: video grids (MP4, GIF) and matplotlib figures."""
