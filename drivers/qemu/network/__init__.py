"""Virtual networks of the QEMU driver, for real and without a daemon.

defs.py     a network definition: parsed, validated, checked (subnet, ranges)
hostnet.py  the host side: ``ip`` commands, links, addresses, network namespace id
dnsmasq.py  the network's dnsmasq: conf, hosts files, pid, lease file
nft.py      the network's nftables table ``virtctl-<name>`` (NAT / forwarding)
taps.py     a guest interface's tap device: create / remove (hotplug calls these too)
resolve.py  ``<interface type='network'|'bridge'>`` at domain start: bridge, tap, MAC
driver.py   QemuNetworkDriver: definitions, net-start / net-destroy, leases
"""
