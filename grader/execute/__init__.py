"""How a batch of submissions is graded: the executor seam and its implementations."""
