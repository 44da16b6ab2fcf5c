"""virtctl+ssh://: virtctl on another host, run through the system's ssh.

``protocol`` is the wire format (one JSON document a line, both ways),
``server`` the far end (``virtctl __serve-stdio``, started by ssh on the
remote host; nothing listens there), ``driver`` the near end: a driver that
forwards every call of the driver interface (drivers/base.py) generically.
"""
