"""python-socketio and python-engineio, adapted: screening, bounded queues, the fan-out, the bus.

Every private name of those libraries that the server uses lives in this
folder and is listed in ``compat.py``.
"""
