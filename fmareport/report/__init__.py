"""The report: which runs the book shows (runs), a rerun against the published reference
(reference), the statistics and tables of the paper's claims (stats, tables), the figures, and the
book that stitches them (book). It reads the results files the run side writes (fmareport.results)."""
