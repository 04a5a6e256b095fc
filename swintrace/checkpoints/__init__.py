"""Building a model: checkpoint layouts, safe reading, named downloads, ``load_model``, ``from_model``."""
