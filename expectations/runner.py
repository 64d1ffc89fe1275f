"""Run a stored suite over a validation frame and turn its results into per-row verdicts.

Great Expectations is imported here only, lazily: it costs seconds, and the
commands that only read must not pay for it.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from great_expectations.data_context.data_context.abstract_data_context import AbstractDataContext

SUITE_DIR = Path(__file__).resolve().parent
READABLE = "record_readable"
ATTEMPT = re.compile(r" \(attempt \d+\)$")  # a file validated again in one night: "name (attempt 2)"
RESULTS_DIR = "results"  # in a night's Data Docs folder: its validation results, the pages' source


class ValidationError(RuntimeError):
    """An expectation could not be evaluated at all (a suite or frame bug, not a data defect)."""


@dataclass(frozen=True)
class Verdicts:
    """Which rows failed which named expectations; rows not listed passed everything."""

    failed: dict[int, list[str]]  # line_no -> expectation names, in suite order
    evaluated: int  # expectations run

    def reasons(self, line_no: int) -> list[str]:
        """The named expectations a row failed (empty when it passed)."""
        return self.failed.get(line_no, [])


def load_suite_json(name: str) -> dict[str, Any]:
    """A suite as reviewed in the repository (expectations/<name>_suite.json)."""
    data: dict[str, Any] = json.loads((SUITE_DIR / f"{name}_suite.json").read_text(encoding="utf-8"))
    return data


class NightValidator:
    """One Great Expectations context for one night: its files' results and Data Docs, nothing older."""

    def __init__(self, docs_dir: Path, suite_name: str = "referral") -> None:
        self.docs_dir = docs_dir.resolve()  # Great Expectations wants an absolute site path
        self.suite_name = suite_name
        self._context: AbstractDataContext | None = None
        self._used: dict[str, int] = {}  # asset names taken in this context (a retried task validates again)

    def _ctx(self) -> AbstractDataContext:
        if self._context is None:
            self._context = _ephemeral_context(self.docs_dir)
            # A rerun of the night in another process finds the earlier runs' results: their names go on
            # counting, so the night's index tells each run of a file apart by name, not by its time alone.
            from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

            for key in self._context.validation_results_store.list_keys():
                if isinstance(key, ValidationResultIdentifier):
                    asset = ATTEMPT.sub("", key.expectation_suite_identifier.name.partition(":")[2])
                    self._used[asset] = self._used.get(asset, 0) + 1
        return self._context

    def validate(
        self, frame: pd.DataFrame, asset_name: str, parameters: dict[str, Any], suite: str | None = None
    ) -> Verdicts:
        """Validate every row of the frame; the result is kept for the night's Data Docs."""
        import great_expectations as gx

        ctx = self._ctx()
        self._used[asset_name] = self._used.get(asset_name, 0) + 1
        if self._used[asset_name] > 1:
            asset_name = f"{asset_name} (attempt {self._used[asset_name]})"
        name = suite or self.suite_name
        expectations = load_suite_json(name)["expectations"]
        gx_suite = ctx.suites.add(gx.ExpectationSuite(name=f"{name}:{asset_name}", expectations=expectations))
        source = ctx.data_sources.add_pandas(f"ds:{asset_name}")
        try:
            definition = ctx.validation_definitions.add(
                gx.ValidationDefinition(
                    name=asset_name,
                    data=source.add_dataframe_asset(asset_name).add_batch_definition_whole_dataframe("whole"),
                    suite=gx_suite,
                )
            )
            # Run directly, not through a Checkpoint: one with no actions adds nothing but its own freshness
            # checks and serialisation (an eighth of a small file's validation). Data Docs are built once per
            # night from the stored results (build_docs).
            result = definition.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=parameters,
                result_format={
                    "result_format": "COMPLETE",
                    "unexpected_index_column_names": ["line_no"],
                    # Not the pandas query listing the failing rows by frame position: the index list above
                    # names them by line, and the query costs a filter of the whole frame per expectation.
                    "return_unexpected_index_query": False,
                    # Line numbers only, as one list per expectation: no failing values (masked as they are)
                    # and not one dict per failing row, whose building and storing was a quarter of the run.
                    "exclude_unexpected_values": True,
                    # No partial list besides: without values it would be the whole line list a second time.
                    "partial_unexpected_count": 0,
                },
            )
        finally:
            # The data source's engine keeps the validated frame for as long as the context lives (the
            # night), so each file's frame would still be held while routing peaks. The stored results
            # and Data Docs do not need it.
            ctx.data_sources.delete(source.name)
        failed: dict[int, list[str]] = defaultdict(list)
        evaluated = 0
        for er in result.results:
            evaluated += 1
            assert er.expectation_config is not None
            name = str(er.expectation_config.meta["name"])
            # Great Expectations reports an exception either at the top of exception_info or per metric under it.
            info = er.exception_info or {}
            if any(isinstance(i, dict) and i.get("raised_exception") for i in (info, *info.values())):
                raise ValidationError(f"expectation {name} could not be evaluated")
            if er.success:
                continue
            for entry in er.result.get("unexpected_index_list") or []:
                for line_no in entry["line_no"]:
                    failed[int(line_no)].append(name)
        # An unreadable record fails every check; its one real reason is that it was unreadable.
        for line_no, names in failed.items():
            if READABLE in names:
                failed[line_no] = [READABLE]
        return Verdicts(failed=dict(failed), evaluated=evaluated)

    def build_docs(self) -> Path | None:
        """Write the night's Data Docs (every file validated so far) and return the index page, if any."""
        if self._context is not None:
            self._context.build_data_docs(site_names=["night"])
        index = self.docs_dir / "index.html"
        return index if index.exists() else None


def import_gx() -> None:
    """Import Great Expectations now (seconds), with analytics off: flows call this as they are loaded."""
    # No analytics (no network here, and none wanted).
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations  # noqa: F401


def _ephemeral_context(docs_dir: Path) -> AbstractDataContext:
    import_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # Data Docs hold this night only (a store growing every night would cost more each night), but every
    # file of it: the results are kept beside the night's pages, so a rerun that validates only a changed
    # file still shows the files it took in before.
    docs_dir.mkdir(parents=True, exist_ok=True)
    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    defaults.stores[defaults.validation_results_store_name]["store_backend"] = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": str(docs_dir / RESULTS_DIR),
    }
    # No progress bars on stderr.
    config = DataContextConfig(
        store_backend_defaults=defaults,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites={
            "night": {
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    return gx.get_context(mode="ephemeral", project_config=config)
