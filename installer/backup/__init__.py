"""Backups: one encrypted, self-describing archive per installation, checked before trusted.

``backup create`` (:mod:`installer.backup.create`) writes the archive that
:mod:`installer.backup.archive` describes, encrypted with ``age``
(:mod:`installer.backup.crypto`); ``backup verify`` checks it; ``backup list`` and
``backup prune`` (:mod:`installer.backup.catalog`) keep the directory in order; the
``backup:`` answer-file section is :mod:`installer.backup.section`. Table statistics that
the manifest records and a restore compares come from one place,
:mod:`installer.backup.tables`.
"""
