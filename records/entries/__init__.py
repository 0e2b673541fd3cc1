"""The service record of a volunteer (MCA rules): identity, served shifts and hand-entered hours with
their corrections, trainings, awards, evaluations, and totals by year.

Service hours stay the ones ``rewards`` keeps (``ServiceRecord``, counted by ``records.hours``); a
correction of them goes through ``rewards.awarding.corrections.correct_service`` so leaderboards, badges
and certificates keep one truth, and this feature keeps the correction's story for display
(``ServiceCorrection``). Trainings and evaluations are its own tables, corrected by new rows.
"""
