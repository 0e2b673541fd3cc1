"""Star levels with publicity (公示): a star badge earned proposes the level, the volunteer's
community sees it publicised, organisers may object, district staff decide, and a level with no
upheld and no open objection is certified once its publicity has ended (``service.py`` says how)."""
