"""ens: facial-landmark competitions from raw data to a blended, analysed submission."""

__version__ = "0.1.0"
