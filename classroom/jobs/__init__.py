"""Background jobs: RQ plumbing (queue.py), the periodic table (schedule.py), job bodies (tasks.py)."""
