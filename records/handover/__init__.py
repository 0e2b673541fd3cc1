"""Hand-over to the national volunteer system (全国志愿服务信息系统) or a provincial platform: one
XLSX of an area's volunteers and their service records that count, for a period, to upload there.

``columns.py`` is the one place that says which columns the workbook has and where each value
comes from (the MCA's own field list is not public: when the real template is known, only that
file changes); ``service.py`` reads the rows in two streamed queries and writes them with the
reports' formula-safe XLSX writer; ``routes.py`` is the download.
"""
