"""mechtrade: a mechanical trading system for futures on the ProjectX Gateway."""

__version__ = "0.1.0"
