class StackError(RuntimeError):
    """The stack could not start, or a component died."""
