"""The sandbox: the only code that starts processes. See box.py for the layers it applies."""
