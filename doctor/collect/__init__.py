"""Collect: load the target and measure it, in a child process with a time budget."""
