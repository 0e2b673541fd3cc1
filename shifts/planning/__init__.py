"""Planning one-off shifts: create, edit, cancel; the edits series share (``editing``)."""
