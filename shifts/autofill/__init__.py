"""Auto-fill: an optimised plan that fills open places with available volunteers (``load`` reads the
problem, ``model`` holds its rules, ``solver`` and ``exact`` optimise).
"""
