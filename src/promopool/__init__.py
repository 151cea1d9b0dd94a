"""promopool: a self-hosted promo-code service."""

from importlib.metadata import version

# The installed distribution's version: pyproject.toml is the one place that says it.
__version__ = version("promopool")
