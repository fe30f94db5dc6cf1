"""Apple's Metal backend is not available in graphc."""


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False
