"""Anomaly analysis: calibrated heatmap, scan score and findings on the scan's own grid.

``analyze`` is the one entry point the command line, the batch runner and the viewer share.
"""

from medae.analysis.outputs import write_outputs
from medae.analysis.pipeline import analyze
from medae.analysis.result import AnalysisResult, Finding

__all__ = ["AnalysisResult", "Finding", "analyze", "write_outputs"]
