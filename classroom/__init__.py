"""The Flask-free domain: courses, people, enrollments, platforms, keys, audit log, DB session.

Arrows point inward: lti_app, lms_sync and provisioning import this package; it imports none of them.
"""
