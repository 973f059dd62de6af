"""Synthetic multi-source worlds with planted truth (the project's default data)."""

from crossmatch.synth.config import PRESETS, WorldConfig, make_config
from crossmatch.synth.world import World, generate_world

__all__ = ["PRESETS", "World", "WorldConfig", "generate_world", "make_config"]
