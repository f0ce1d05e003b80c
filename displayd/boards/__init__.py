"""Boards: their settings and credentials (`service`, `urls`), bulk import (`bulk`), health,
and the `/boards` endpoints; what each shows is answered from `displayd.live`."""
