"""cuDNN flags are accepted (code sets them) and have no effect on the CPU."""

enabled = False
benchmark = False
deterministic = False


def is_available() -> bool:
    return False
