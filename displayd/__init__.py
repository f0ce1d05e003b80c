"""displayd: slogan campaigns on electronic display boards."""

__version__ = "0.1.0"
