"""The competition: metric, simulated leaderboard, point subsets, layouts, baseline, metrics."""
