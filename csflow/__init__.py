"""csflow: the nightly backbone of a Customer Success team.

The package holds plain, Prefect-free functions (config, warehouse, ingest,
generate, ...); the Prefect flows in ``flows/`` are a thin layer over them.
"""

__version__ = "0.1.0"
