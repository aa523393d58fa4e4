"""Batch reporting: many records in, one report per record out, on the local cores (see `runner`)."""

from zhujian.batch.runner import BatchError, BatchSummary, Reject, run_batch

__all__ = ["BatchError", "BatchSummary", "Reject", "run_batch"]
