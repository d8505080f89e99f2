"""Analysis of a landmark competition: index uniformity, val-to-leaderboard fit, per-point MSE.

Imports only numpy, pandas, scipy and `ensemble`; matplotlib loads inside `analysis.plots`.
"""
