"""The rotation log: what every board was given, when, and how delivery went."""
