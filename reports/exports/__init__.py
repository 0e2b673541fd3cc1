"""Exports of reports as XLSX and CSV (the participation report's figures, laid out as sheets)."""
