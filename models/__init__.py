"""Learned components behind small interfaces, with backends named in a registry and imported lazily."""
