"""``python -m jaxcal``: the same as the ``jaxcal`` command."""

from .cli import entrypoint

if __name__ == "__main__":
    entrypoint()
