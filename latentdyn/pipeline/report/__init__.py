"""The HTML report of a run folder (``page``), a section per stage kind (``sections``), and the
across-datasets comparison figure (``compare``)."""
