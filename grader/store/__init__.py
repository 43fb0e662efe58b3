"""The results store: the only code that writes grades.sqlite (`sqlite`), and its schema's
history as named migrations (`migrations`)."""
