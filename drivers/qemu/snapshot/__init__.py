"""Snapshots of the QEMU driver (virsh's snapshot-* commands), for real.

* ``store.py``: the metadata, one ``<domainsnapshot>`` document per snapshot
  (the domain definition inside) in ``<config>/domains/<uuid>/snapshots/``,
  the current one named in ``current``, an operation under way in
  ``pending.json``; every file written with ``state.atomic_write`` under the
  domain lock.
* ``plan.py``: what a request asks of each disk (internal, external, none),
  refused with NOT_SUPPORTED naming the disk where it cannot be done.
* ``internal.py``: internal snapshots: ``qemu-img snapshot`` for a shut-off
  domain, QMP ``snapshot-save``/``-load``/``-delete`` jobs for a running one.
* ``external.py``: disk-only external snapshots: an overlay made by
  ``qemu-img create -b``, then ``blockdev-add`` + ``blockdev-snapshot`` in one
  ``transaction`` on a running domain; the overlay becomes the disk's source
  in the live and the persistent definitions.
* ``extrevert.py``: reverting to an external disk-only snapshot (libvirt
  9.7+'s way): new overlays on the snapshot's images, recorded as
  ``<revertDisks>``; the abandoned top removed only when it is nobody's state.
* ``extdelete.py``: deleting an external snapshot: its overlay merged into
  the image below by a block commit (``qemu-img commit`` shut off, QMP
  ``block-commit`` running, blockjob.py), children and definitions re-pointed.
* ``repair.py``: an operation killed half way (``pending.json``) is finished
  or undone by the next snapshot command, from what the images hold
  (``qemu-img snapshot -l``, ``qemu-img info``, QMP ``query-block``).
* ``driver.py``: the SnapshotDriver (drivers/base.py) tying these together.

Imported only by a snapshot command (drivers/qemu/driver.py builds the
driver on first use).
"""
