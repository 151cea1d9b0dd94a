"""Every storage operation, written once: one module per area, each operation a generator of steps
(``storage/driver.py``) with its public method on the area's class, which the ``Store`` combines."""
