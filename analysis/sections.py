"""The three report sections; each says what is missing when its inputs are absent.

Malformed input files raise `InputError` (the CLI turns it into a clean message); inputs that
are absent or too thin for a section give a `Section` with `missing` set instead.
"""

from __future__ import annotations

from analysis.section_leaderboard import leaderboard_section
from analysis.section_points import points_section
from analysis.section_uniformity import uniformity_section

__all__ = ["leaderboard_section", "points_section", "uniformity_section"]
