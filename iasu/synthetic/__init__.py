"""Synthetic inbox data: each source's daily export, optionally with injected defects."""

from iasu.synthetic.defects import DefectKind
from iasu.synthetic.generate import FileSummary, GenerateSummary, generate, write_undecodable

__all__ = ["DefectKind", "FileSummary", "GenerateSummary", "generate", "write_undecodable"]
