"""The test driver: an in-memory mock hypervisor compatible with libvirt's."""
