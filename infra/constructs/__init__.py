"""Fidelio's CDK constructs, one a file; the stack (infra/stack.py) wires them together."""
