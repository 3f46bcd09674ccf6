"""What viewers browse: the catalogue's queries (ready videos by category and search, one page
at a time, the categories with their counts) and each viewer's watch progress ("continue
watching").

Reads and writes rows only: it may import the models (and the accounts' user row), nothing of the
jobs, uploads or delivery. `make lint` checks that.
"""
