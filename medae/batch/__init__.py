"""Folder runs: every series under a folder analysed with one model, resumable, with one table for all.

``find_items`` lists the series, ``run_batch`` analyses them; ``medae batch`` and any script call the same two.
"""

from medae.batch.items import BatchItem, find_items
from medae.batch.runner import BatchOptions, run_batch
from medae.batch.table import CSV_COLUMNS, Row

__all__ = ["CSV_COLUMNS", "BatchItem", "BatchOptions", "Row", "find_items", "run_batch"]
