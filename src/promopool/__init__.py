"""promopool: a self-hosted promo-code service."""

__version__ = "0.1.0"
