"""Database, models, simulated business systems and the durable job queue.

The bottom layer: imports neither `pipelines` nor `bot`.
"""
