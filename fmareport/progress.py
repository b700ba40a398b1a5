"""Progress bars that read well in a terminal, a notebook and a papermill log.

`tqdm.auto` draws a widget bar in a Jupyter kernel when ipywidgets is installed; without
it, it falls back to text bars and warns ("IProgress not found") into every notebook
that imports us. We do not depend on ipywidgets (a widget bar would not render in the
offline book anyway), so we pick the text bar ourselves and nothing warns. Set
TQDM_MININTERVAL (seconds) to thin the lines a papermill log gets.
"""

try:
    import ipywidgets  # noqa: F401  (only to see whether tqdm.auto can draw its widget)
    from tqdm.auto import tqdm
except ImportError:
    from tqdm import tqdm

__all__ = ["tqdm"]
