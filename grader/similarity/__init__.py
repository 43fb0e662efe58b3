"""Copy detection: which pairs of submissions share code beyond the starter, and which pairs
of models make the same mistakes far more often than independently trained models do."""
