"""Academic integrity: evidence from agent activity, deadline snapshots, class similarity, reports, audit export.

Pure decisions live in evidence.py, flags.py and similarity.py; services that read and write rows in
services.py, snapshots.py, chain.py and purge.py; rendering in pdf.py; jobs in jobs.py.
"""
