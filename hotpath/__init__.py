"""hotpath: one Ray runtime serving real-time recommendations and wearable voice commands."""

__version__ = "0.1.0"
