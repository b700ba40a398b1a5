"""`tqdm`: progress bars that read well in a terminal, a notebook and a papermill log.

`tqdm.auto` without ipywidgets (not a dependency: the offline book renders no widget) warns
"IProgress not found" into every notebook, so we pick the text bar ourselves then. Set
TQDM_MININTERVAL (seconds) to thin the lines a papermill log gets.
"""

try:
    import ipywidgets  # noqa: F401  (only to see whether tqdm.auto can draw its widget)
    from tqdm.auto import tqdm
except ImportError:
    from tqdm import tqdm

__all__ = ["tqdm"]
