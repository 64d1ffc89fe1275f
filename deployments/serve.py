"""Serve the scheduled deployments (deployments.scheduled): `python -m deployments.serve` against a Prefect server.

What serving needs is checked first, before the flows (Prefect, Great Expectations) are loaded: an operator
whose setting is missing hears so in a second, not after the seconds those imports take.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from iasu import wiring
from iasu.db import first_line
from iasu.errors import OperatorError
from iasu.settings import bad_prefect_setting, get_settings


def main() -> None:
    """Register and serve the deployments until interrupted."""
    try:
        # A served night handles personal data, and its alerts must reach Slack: what it needs is checked before
        # serving, not found missing at 02:00 (a dry run's alerts are final and would never be sent).
        get_settings().require_slack()
        wiring.ready_for_nights(None)
        require_prefect_server()
    except OperatorError as exc:
        _refuse(str(exc))
    except ValidationError as exc:  # Prefect's own settings (ours raise OperatorError)
        _refuse(bad_prefect_setting(exc))
    except SQLAlchemyError as exc:  # the driver's first line: never a statement
        _refuse(f"database unreachable or refused the operation ({first_line(getattr(exc, 'orig', None) or exc)})")
    from prefect import serve

    from deployments.scheduled import deployments

    serve(*deployments())


def _refuse(said: str) -> NoReturn:
    sys.stderr.write(f"deployments.serve: {said}\n")
    raise SystemExit(2)


def require_prefect_server() -> None:
    """Serving needs a Prefect server of its own: a temporary one would take the deployments but run none."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise OperatorError(
            "PREFECT_API_URL is not set, and the temporary server Prefect would start runs no schedules: "
            "start `prefect server start` and set PREFECT_API_URL to its API (http://127.0.0.1:4200/api)"
        )
    with get_client(sync_client=True) as client:
        failed = client.api_healthcheck()
    if failed is not None:
        # A server not started yet, or the wrong port: said in one line, not a connection error's traceback.
        raise OperatorError(f"the Prefect server at PREFECT_API_URL ({url}) does not answer: {failed}")


if __name__ == "__main__":
    main()
