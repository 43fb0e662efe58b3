"""Turning stored results into what people read: the ranked board, its CSV, plot and table."""
