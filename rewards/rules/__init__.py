"""Point rules: a city's versions, each applying from its effective date; the rule for a moment."""
