"""LMS sync and passback: NRPS rosters, CSV import, due dates, AGS grades (issue 5)."""
