"""Integrity pages: evidence report, similarity, audit trail (instructor and head TA), own activity record."""
