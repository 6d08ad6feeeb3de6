"""kechuang (科创): science-and-technology innovation services for a city district."""

__version__ = "0.1.0"
