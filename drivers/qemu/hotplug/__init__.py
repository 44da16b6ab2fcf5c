"""Hotplug on the native QEMU driver: attach, detach and update devices of
a running domain over QMP, and the same edits on its persistent definition.

Modules, one idea each:

* ``ops.py``     the four driver operations (locks, --live/--config, saving);
* ``plan.py``    the QMP arguments of a disk, from the argv builder itself
                 (so a hotplugged disk is opened exactly as at start);
* ``pci.py``     a free PCI slot: a free pcie-root-port on q35, a slot on pc;
* ``disk.py``    blockdev-add + device_add, device_del + DEVICE_DELETED + blockdev-del;
* ``media.py``   CD-ROM/floppy media: open tray, remove/insert medium, close tray;
* ``net.py``     netdev_add + device_add; the netdev arguments come from one function;
* ``chardev.py`` rng (object-add) and virtio channels (chardev-add) + device_add;
* ``config.py``  --config of every kind: libvirt's rules for the persistent definition;
* ``repair.py``  what a killed command left half done, finished by the next one.
"""
