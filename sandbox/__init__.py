"""The sandbox: a stateful IPython code-execution service over HTTP, and its client."""
