"""The log: every episode webqa runs, kept in SQLite in the data directory.

One *run* is one question answered (by ``answer``, ``answer_many`` or ``webqa batch``);
it has one *episode* per best-of-n candidate, each with its steps (command, valid or
not, the message, the exact observation the model answered to), its quotes, its answer,
its reward score and whether it was chosen. A run also keeps the searches and fetches
its browsers made (``visits``; the n episodes of a question share one web, so visits
belong to the run) and, when it failed, its error.

Three modules, one job each: ``db`` (where the log is, its schema as migrations, a
connection), ``writer`` (recording a run) and ``reader`` (``webqa log``'s queries).
The log is never moved or rewritten to repair it: what is in it stays for the user to
rescue.
"""
