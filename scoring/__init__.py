"""Points rules and the love-bank ledger's pure core: no Flask, no SQLAlchemy, no I/O.

For now it holds the conversion of reported volunteer time (`scoring.hours`); the points rules
build on the service records the foundation writes.
"""
