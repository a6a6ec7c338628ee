"""nas: neural-architecture search for tiny CNNs under a parameter budget."""

__version__ = "0.1.0"
