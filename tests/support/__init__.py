"""Helpers that several test modules share; a test module never imports another."""
