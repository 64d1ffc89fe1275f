"""How the flows are scheduled and served.

The product's Prefect defaults (no telemetry, a patient temporary server, its own loggers in the runs' logs)
are applied here, before a module of this package first imports Prefect, which reads them at import.
"""

from iasu.prefect_env import quiet_prefect

quiet_prefect()
