"""The CodeQual installer: the domain and the install engine.

Nothing in this package imports the Textual UI; the wizard and the headless command
line are two front ends over the same plan and runner.
"""

__version__ = "0.1.0"
