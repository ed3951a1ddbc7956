"""A job that does nothing: the baseline of what RQ itself costs per job."""


def noop() -> None:
    return None
