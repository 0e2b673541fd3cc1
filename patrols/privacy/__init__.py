"""Location under PIPL: the separate consent to tracking (art. 28/29), withdrawing it and deleting
the track kept, the log of every read of someone else's positions, the personal-data export's
location sections and retention per kind of positional data.
"""
