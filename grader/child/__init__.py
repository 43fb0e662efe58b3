"""Code that runs only inside the sandbox, in the child process of one job phase.

It imports nothing of the grader's side but grader.protocol and the leaf modules of grader.core;
the grader starts it as `python -m grader.child` and never imports it.
"""
