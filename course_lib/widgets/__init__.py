"""ipywidgets dashboards composed from course_lib.plots; one module per notebook idea.

Each dashboard returns a widget; nothing is displayed on import.
"""
