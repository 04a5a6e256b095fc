"""The trace as data: events, their JSON Lines file, its validation, a trace as rows (torch-free)."""
