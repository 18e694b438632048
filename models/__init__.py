"""Learned components behind small interfaces; ``m3mem.build`` chooses and builds them from settings."""
