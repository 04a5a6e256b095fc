"""Labs: the learner writes a piece of Swin, and ``swintrace.check`` compares it with the model.

``pieces.py`` holds the five pieces (what each function receives and returns,
the inputs and the result the traced model gave that step, and the mistakes
that can be tried against them), ``judge.py`` the diagnosis, ``check.py`` the
public ``check(fn, step)``. ``notebooks/lab.ipynb`` walks a learner through them.
"""
