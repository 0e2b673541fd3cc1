"""Incident reports (事件上报) with the four-colour warning, their photos and their workflow
(``workflow``); not the staff ``reports`` package to come.
"""
