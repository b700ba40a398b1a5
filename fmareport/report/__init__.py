"""The report: the book of one profile's results (book/pages/*.md), laid out as the book is.

* `paper`: the paper as data (its tables' numbers, its claims in its words, the margin);
* `compare`: the runs as the paper's settings, and every comparison (intervals, claims, ablations);
  `stats`, `coverage`: the intervals and their simulated coverage; `runs`: which runs the book shows;
  `reference`: a rerun against the published reference; `filters`: what the first layer learned;
* `page`: what every page starts from; `pages/<page>`: what each page computes and shows;
  `figures`: the run figures the Results page and each cell's notebook share;
* `book`: the build (staging, Jupyter Book); `sphinx_checks`: the book's Sphinx extension.
"""
