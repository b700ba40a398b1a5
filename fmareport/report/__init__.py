"""The report: a cell's results file (results, provenance), the statistics and tables of the
paper's claims (stats, tables), the figures, and the book that stitches them (book)."""
