"""The libvirt driver: virtctl's commands on any libvirt connection (a remote
libvirtd over ssh/tcp/tls, the local libvirtd, libvirt's own test driver),
through the libvirt Python binding (the optional extra ``virtctl[libvirt]``)."""
