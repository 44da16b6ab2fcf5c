"""The gaps found by auditing virtctl's schemas against libvirt 9.0's.

Each case is a small document that libvirt's validator (``virt-xml-validate``)
accepts and virtctl refused before the audit, or one that libvirt refuses and
virtctl accepted; most come in pairs.  Every case is checked with virtctl's
validator, and with ``virt-xml-validate`` too where it is installed, so that a
case that does not say what libvirt says is caught here rather than believed.
scripts/schema_fuzz.py found most of them (random documents from one grammar,
checked with the other).
"""
from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from virtctl.errors import XMLError
from virtctl.xml import validate as V
from virtctl.xml import xmlapi

TOOL = shutil.which("virt-xml-validate")
LV_KIND = {"domain": "domain", "network": "network", "pool": "storagepool",
           "volume": "storagevol", "domainsnapshot": "domainsnapshot"}


def dom(body: str = "", os: str = "<os><type>hvm</type></os>", devices: str = "",
        attrs: str = "type='kvm'") -> str:
    dev = f"<devices>{devices}</devices>" if devices else ""
    return f"<domain {attrs}><name>g</name><memory>1024</memory>{os}{body}{dev}</domain>"


def net(body: str) -> str:
    return f"<network><name>n</name>{body}</network>"


def pool(body: str, type_: str = "dir", target: str = "<target><path>/p</path></target>") -> str:
    return f"<pool type='{type_}'><name>p</name>{body}{target}</pool>"


def vol(body: str = "", target: str = "<target/>", name: str = "v") -> str:
    return f"<volume><name>{name}</name><capacity>1</capacity>{body}{target}</volume>"


def snap(body: str) -> str:
    return f"<domainsnapshot>{body}</domainsnapshot>"


FILE_DISK = "<disk type='file'><source file='/i.img'/><target dev='vda'/>{}</disk>"
ACCEPT, REFUSE = True, False

# (id, kind, document, libvirt accepts it)
CASES = [
    # --- basictypes: value spaces shared by every schema ------------------------
    ("uuid-bare-hex", "domain", dom("<uuid>4dea22b31d52d8f32516782e98ab3fa0</uuid>"), ACCEPT),
    ("uuid-partial-dashes", "domain", dom("<uuid>4dea22b3-1d52d8f32516782e98ab3fa0</uuid>"), REFUSE),
    ("unit-any-case", "domain", dom("<memory unit='kIB'>1024</memory><currentMemory unit='Bytes'>1024</currentMemory>"
                                    ).replace("<memory>1024</memory>", ""), ACCEPT),
    ("unit-unknown", "domain", dom().replace("<memory>", "<memory unit='KX'>"), REFUSE),
    ("size-in-hex", "domain", dom().replace("1024", "0x400"), REFUSE),
    ("size-above-32-bits", "domain", dom().replace("<memory>1024", "<memory unit='b'>18446744073709551615"), ACCEPT),
    ("windows-path", "domain", dom(devices="<emulator>C:\\qemu\\qemu.exe</emulator>"), ACCEPT),
    ("root-is-no-file", "domain", dom(devices="<emulator>/</emulator>"), REFUSE),
    ("pci-bus-decimal", "domain", dom(devices=FILE_DISK.format(
        "<address type='pci' domain='0' bus='255' slot='31' function='7'/>")), ACCEPT),
    ("pci-bus-hex-without-0x", "domain", dom(devices=FILE_DISK.format(
        "<address type='pci' bus='ff'/>")), REFUSE),
    ("pci-domain-32-bits", "domain", dom(devices=FILE_DISK.format(
        "<address type='pci' domain='0x10000' bus='0' slot='0'/>")), ACCEPT),
    ("ccw-decimal", "domain", dom(devices=FILE_DISK.format(
        "<address type='ccw' cssid='254' ssid='0' devno='65535'/>")), ACCEPT),
    ("ccw-cssid-too-big", "domain", dom(devices=FILE_DISK.format(
        "<address type='ccw' cssid='0xff' ssid='0' devno='1'/>")), REFUSE),
    ("ipv6-seven-groups-after-gap", "network", net("<ip address='::1:2:3:4:5:6:7' prefix='64'/>"), ACCEPT),
    ("ipv6-ipv4-tail-after-group", "network", net("<ip address='1::2:1.2.3.4' prefix='64'/>"), REFUSE),
    ("decimal-where-libvirt-wants-decimal", "domain", dom("<vcpus><vcpu id='0x1' enabled='yes'/></vcpus>"),
     REFUSE),
    ("plus-sign-in-number", "domain", dom("<iothreads>+2</iothreads>"), REFUSE),
    ("dns-name-underscore", "network", net("<domain name='my_lan'/>"), REFUSE),

    # --- network ---------------------------------------------------------------
    ("net-bandwidth-classid", "network", net("<bandwidth classID='3'><inbound average='1'/></bandwidth>"),
     ACCEPT),
    ("net-bandwidth-zero-rate", "network", net("<bandwidth><inbound average='0'/></bandwidth>"), REFUSE),
    ("net-srv-free-service-and-target", "network", net(
        "<dns><srv service='my service' protocol='tcp' target='any text' port='0'/></dns>"), ACCEPT),
    ("net-srv-protocol", "network", net("<dns><srv service='x' protocol='sctp'/></dns>"), REFUSE),
    ("net-srv-port-16-bits", "network", net("<dns><srv service='x' protocol='tcp' port='65536'/></dns>"),
     REFUSE),
    ("net-dhcp-host-by-name-only", "network", net(
        "<ip address='10.0.0.1' prefix='24'><dhcp><host name='any name' ip='10.0.0.2'/></dhcp></ip>"), ACCEPT),
    ("net-dhcp-host-duid", "network", net(
        "<ip family='ipv6' address='fd00::1' prefix='64'><dhcp>"
        "<host id='0:4:7e:7d:f0:7d:a8:bc:c5:d2:13:32:11:ed:16:ea:84:63' ip='fd00::2'/></dhcp></ip>"), ACCEPT),
    ("net-dhcp-host-bad-duid", "network", net(
        "<ip address='10.0.0.1' prefix='24'><dhcp><host id='12:34' ip='10.0.0.2'/></dhcp></ip>"), REFUSE),
    ("net-dhcp-host-multicast-mac", "network", net(
        "<ip address='10.0.0.1' prefix='24'><dhcp><host mac='01:00:00:00:00:01' ip='10.0.0.2'/></dhcp></ip>"),
     REFUSE),
    ("net-lease-64-bits", "network", net(
        "<ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.2' end='10.0.0.9'>"
        "<lease expiry='18446744073709551615'/></range></dhcp></ip>"), ACCEPT),
    ("net-bridge-delay-64-bits", "network", net("<bridge name='br0' delay='4294967296'/>"), ACCEPT),
    ("net-bridge-delay-hex", "network", net("<bridge name='br0' delay='0x10'/>"), REFUSE),
    ("net-port-isolated-optional", "network", net("<port/>"), ACCEPT),
    ("net-mtu-zero", "network", net("<mtu size='0'/>"), ACCEPT),
    ("net-mtu-16-bits", "network", net("<mtu size='65536'/>"), REFUSE),
    ("net-tftp-relative-root", "network", net("<ip address='10.0.0.1' prefix='24'><tftp root='tftp'/></ip>"),
     ACCEPT),
    ("net-forward-driver-xen", "network", net("<forward mode='hostdev'><driver name='xen'/></forward>"),
     REFUSE),
    ("net-forward-interfaces-and-addresses", "network", net(
        "<forward mode='passthrough'><interface dev='eth0'/>"
        "<address type='pci' domain='0' bus='1' slot='0' function='0'/></forward>"), REFUSE),
    ("net-nat-two-ranges", "network", net(
        "<forward mode='nat'><nat><address start='1.1.1.1' end='1.1.1.2'/>"
        "<address start='1.1.1.3' end='1.1.1.4'/></nat></forward>"), REFUSE),
    ("net-bootp-server-ipv6", "network", net(
        "<ip address='10.0.0.1' prefix='24'><dhcp><bootp file='pxe' server='fd00::1'/></dhcp></ip>"), REFUSE),
    ("net-virtualport-hex-ids", "network", net(
        "<virtualport type='802.1Qbg'><parameters managerid='0xDe' typeid='0x1ce' typeidversion='0x8f'/>"
        "</virtualport>"), ACCEPT),
    ("net-virtualport-params-by-type", "network", net(
        "<virtualport type='802.1Qbg'><parameters profileid='p'/></virtualport>"), REFUSE),
    ("net-virtualport-free-profile", "network", net(
        "<virtualport type='802.1Qbh'><parameters profileid='my profile'/></virtualport>"), ACCEPT),
    ("net-route-metric-hex", "network", net("<route address='10.1.0.0' prefix='16' gateway='10.0.0.2' "
                                            "metric='0x1'/>"), REFUSE),
    ("net-portgroup-name", "network", net("<portgroup name='a b'/>"), REFUSE),
    ("net-unicast-mac", "network", net("<mac address='01:00:00:00:00:01'/>"), REFUSE),

    # --- storage pools -----------------------------------------------------------
    ("pool-nfs-protocol-4.1", "pool", pool(
        "<source><host name='nfs.example.com'/><dir path='/export'/><format type='nfs'/>"
        "<protocol ver='4.1'/></source>", "netfs"), ACCEPT),
    ("pool-cifs-relative-dir", "pool", pool(
        "<source><host name='srv'/><dir path='share'/><format type='cifs'/></source>", "netfs"), ACCEPT),
    ("pool-nfs-needs-host", "pool", pool("<source><dir path='/export'/></source>", "netfs"), REFUSE),
    ("pool-dir-needs-target", "pool", pool("", "dir", target=""), REFUSE),
    ("pool-name-slash", "pool", "<pool type='dir'><name>a/b</name><target><path>/p</path></target></pool>",
     REFUSE),
    ("pool-disk-vendor-in-format", "pool", pool(
        "<source><device path='/dev/sdb'/><format type='gpt'><vendor name='ACME'/></format></source>",
        "disk"), ACCEPT),
    ("pool-host-port-minus-one", "pool", pool(
        "<source><host name='h' port='-1'/><device path='iqn.2013-06.com.example:iscsi-pool'/></source>",
        "iscsi"), ACCEPT),
    ("pool-rbd-refresh-empty", "pool", pool(
        "<source><name>rbd</name><host name='mon'/></source><refresh/>", "rbd", target=""), ACCEPT),
    ("pool-adapter-name-free", "pool", pool("<source><adapter name='host/0'/></source>", "scsi"), ACCEPT),
    ("pool-auth-secret-uuid-free", "pool", pool(
        "<source><name>r</name><host name='m'/><auth type='ceph' username='u'><secret uuid='1'/></auth>"
        "</source>", "rbd", target=""), ACCEPT),
    ("pool-mode-many-digits", "pool", pool(
        "", "dir", target="<target><path>/p</path><permissions><mode>00755</mode></permissions></target>"),
     ACCEPT),
    ("pool-mode-not-octal", "pool", pool(
        "", "dir", target="<target><path>/p</path><permissions><mode>0789</mode></permissions></target>"),
     REFUSE),
    ("pool-windows-target", "pool", pool("", "dir", target="<target><path>D:\\pool</path></target>"), ACCEPT),

    # --- storage volumes -------------------------------------------------------
    ("vol-encryption-engine", "volume", vol(target="<target><encryption format='luks' engine='librbd'>"
                                               "<secret type='passphrase' usage='v'/></encryption></target>"),
     ACCEPT),
    ("vol-encryption-luks-any", "volume", vol(target="<target><encryption format='luks-any'/></target>"),
     REFUSE),
    ("vol-cipher-needs-ivgen", "volume", vol(target="<target><encryption format='luks'>"
                                                "<secret type='passphrase' usage='v'/><cipher name='aes' size='256'/>"
                                                "</encryption></target>"), REFUSE),
    ("vol-format-fs-types", "volume", vol(target="<target><format type='vmfs'/></target>"), ACCEPT),
    ("vol-format-unknown", "volume", vol(target="<target><format type='unknown'/></target>"), ACCEPT),
    ("vol-needs-target", "volume", vol(target=""), REFUSE),
    ("vol-type-ploop", "volume", "<volume type='ploop'><name>v</name><target/></volume>", REFUSE),
    ("vol-name-slash", "volume", vol(name="a/b"), REFUSE),

    # --- domain: the test driver's example node file -------------------------
    ("os-root", "domain", dom(os="<os><type>xen</type><kernel>/boot/vmlinuz</kernel>"
                                 "<root>/dev/sda1</root></os>"), ACCEPT),
    ("os-root-relative", "domain", dom(os="<os><type>xen</type><root>dev/sda1</root></os>"), REFUSE),
    ("console-tty-only", "domain", dom(devices="<console tty='/dev/pts/5'/>"), ACCEPT),
    ("disk-without-type", "domain", dom(devices="<disk><source file='/i.img'/><target dev='sda1'/></disk>"),
     ACCEPT),
    # --- domain: general ---------------------------------------------------------
    ("bootloader-instead-of-os", "domain", dom(os="", body="<bootloader>/usr/bin/pygrub</bootloader>"),
     ACCEPT),
    ("kernel-relative", "domain", dom(os="<os><type>hvm</type><kernel>vmlinuz</kernel></os>"), REFUSE),
    ("xen-type-on-hvm-loader", "domain", dom(os="<os><type>xen</type><loader>/l</loader></os>"), REFUSE),
    ("domain-id-32-bits", "domain", dom(attrs="type='kvm' id='4294967295'"), ACCEPT),
    ("domain-id-negative", "domain", dom(attrs="type='kvm' id='-1'"), REFUSE),
    ("title-empty", "domain", dom("<title></title>"), REFUSE),
    ("vcpu-16-bits", "domain", dom("<vcpu>65536</vcpu>"), REFUSE),
    ("iothread-id-zero", "domain", dom("<iothreadids><iothread id='0'/></iothreadids>"), ACCEPT),
    ("maxmemory-needs-slots", "domain", dom("<maxMemory>4096</maxMemory>"), REFUSE),
    ("idmap-uid-only", "domain", dom("<idmap><uid start='0' target='1000' count='10'/></idmap>"), ACCEPT),
    ("acpi-index-optional", "domain", dom(devices=FILE_DISK.format("<acpi/>")), ACCEPT),
    ("vmport-state-optional", "domain", dom("<features><vmport/></features>"), ACCEPT),
    ("pm-enabled-optional", "domain", dom("<pm><suspend-to-mem/></pm>"), ACCEPT),
    ("lxc-capabilities", "domain", dom("<features><capabilities policy='deny'><chown state='on'/>"
                                       "</capabilities></features>", attrs="type='lxc'"), ACCEPT),
    ("hyperv-passthrough-takes-no-list", "domain", dom(
        "<features><hyperv mode='passthrough'><relaxed state='on'/></hyperv></features>"), REFUSE),
    ("hyperv-spinlocks-few-retries", "domain", dom(
        "<features><hyperv><spinlocks state='on' retries='10'/></hyperv></features>"), ACCEPT),
    ("async-teardown-is-later", "domain", dom("<features><async-teardown enabled='yes'/></features>"),
     REFUSE),
    ("topology-clusters-is-later", "domain", dom(
        "<cpu><topology sockets='1' clusters='1' cores='1' threads='1'/></cpu>"), REFUSE),
    ("cpu-model-free-text", "domain", dom("<cpu><model>My CPU</model></cpu>"), ACCEPT),
    ("numa-distance-range", "domain", dom(
        "<cpu><numa><cell id='0' cpus='0' memory='1024'><distances><sibling id='0' value='5'/>"
        "</distances></cell></numa></cpu>"), REFUSE),
    ("interconnect-bandwidth-unit", "domain", dom(
        "<cpu><numa><cell id='0' cpus='0' memory='1024'/><interconnects>"
        "<bandwidth initiator='0' target='0' type='access' value='1'/></interconnects></numa></cpu>"), REFUSE),
    ("perf-event-names", "domain", dom("<perf><event name='my_event' enabled='yes'/></perf>"), REFUSE),
    ("perf-empty", "domain", dom("<perf/>"), REFUSE),
    ("timer-attributes-by-name", "domain", dom("<clock offset='utc'><timer name='rtc' frequency='100'/>"
                                               "</clock>"), REFUSE),
    ("clock-adjustment-with-timezone", "domain", dom("<clock offset='timezone' timezone='UTC' "
                                                     "adjustment='10'/>"), REFUSE),
    ("scheduler-fifo-needs-priority", "domain", dom("<cputune><vcpusched vcpus='0' scheduler='fifo'/>"
                                                    "</cputune>"), REFUSE),
    ("scheduler-batch-takes-no-priority", "domain", dom(
        "<cputune><vcpusched vcpus='0' scheduler='batch' priority='1'/></cputune>"), REFUSE),
    ("cachetune-empty", "domain", dom("<cputune><cachetune vcpus='0'/></cputune>"), REFUSE),
    ("cpu-period-range", "domain", dom("<cputune><period>100</period></cputune>"), REFUSE),
    ("resource-order", "domain", dom("<resource><fibrechannel appid='a'/><partition>/machine</partition>"
                                     "</resource>"), REFUSE),
    ("seclabel-model-free", "domain", dom("<seclabel type='none' model='my model'/>"), ACCEPT),
    ("seclabel-dynamic-relabel-no", "domain", dom("<seclabel type='dynamic' relabel='no'/>"), REFUSE),
    ("fwcfg-file-relative", "domain", dom("<sysinfo type='fwcfg'><entry name='opt/x' file='x.bin'/>"
                                          "</sysinfo>"), ACCEPT),
    ("qemu-override-remove-with-value", "domain", dom(
        "<qemu:override xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:device alias='ua-1'>"
        "<qemu:frontend><qemu:property name='p' type='remove' value='x'/></qemu:frontend></qemu:device>"
        "</qemu:override>"), ACCEPT),
    ("qemu-capability-free", "domain", dom(
        "<qemu:capabilities xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
        "<qemu:add capability='Some.Cap'/></qemu:capabilities>"), ACCEPT),
    # --- domain: devices -------------------------------------------------------
    ("disk-target-name", "domain", dom(devices="<disk type='file'><source file='/i'/><target dev='foo'/>"
                                               "</disk>"), REFUSE),
    ("disk-ssh-is-later", "domain", dom(devices="<disk type='network'><source protocol='ssh' name='i'>"
                                                "<host name='h'/></source><target dev='vda'/></disk>"), REFUSE),
    ("disk-nfs-needs-identity", "domain", dom(devices="<disk type='network'><source protocol='nfs' name='i'>"
                                                      "<host name='h'/></source><target dev='vda'/></disk>"),
     REFUSE),
    ("disk-vmware-path", "domain", dom(devices="<disk type='file'><source file='[store] vm/disk.vmdk'/>"
                                               "<target dev='sda'/></disk>"), ACCEPT),
    ("disk-geometry-any-integer", "domain", dom(devices=FILE_DISK.format(
        "<geometry cyls='-1' heads='16' secs='63'/>")), ACCEPT),
    ("disk-iotune-total-or-parts", "domain", dom(devices=FILE_DISK.format(
        "<iotune><total_bytes_sec>1</total_bytes_sec><read_bytes_sec>1</read_bytes_sec></iotune>")), REFUSE),
    ("disk-auth-username", "domain", dom(devices=(
        "<disk type='network'><source protocol='iscsi' name='iqn.2013-06.com.example:t/1'><host name='h'/>"
        "</source><auth username='my user'><secret type='iscsi' usage='x'/></auth><target dev='sda'/>"
        "</disk>")), REFUSE),
    ("disk-mirror-shallow-is-later", "domain", dom(devices=FILE_DISK.format(
        "<mirror type='file' job='copy' shallow='yes'><source file='/m'/></mirror>")), REFUSE),
    ("disk-backing-needs-format", "domain", dom(devices=FILE_DISK.format(
        "<backingStore type='file'><source file='/b'/></backingStore>")), REFUSE),
    ("disk-backing-end", "domain", dom(devices=FILE_DISK.format("<backingStore/>")), ACCEPT),
    ("interface-internal", "domain", dom(devices="<interface type='internal'><source name='intnet'/>"
                                                 "</interface>"), ACCEPT),
    ("interface-network-needs-source", "domain", dom(devices="<interface type='network'/>"), REFUSE),
    ("interface-empty-coalesce", "domain", dom(devices="<interface type='user'><coalesce/></interface>"),
     ACCEPT),
    ("interface-port-forward-no-range", "domain", dom(
        "", devices="<interface type='user'><portForward proto='tcp'/></interface>"), ACCEPT),
    ("interface-bridge-with-space", "domain", dom(devices="<interface type='bridge'><source bridge='br 0'/>"
                                                          "</interface>"), ACCEPT),
    ("interface-multicast-mac", "domain", dom(devices="<interface type='user'>"
                                                      "<mac address='01:00:00:00:00:01'/></interface>"), REFUSE),
    ("hostdev-mode-optional", "domain", dom(devices="<hostdev type='usb'><source><address bus='1' device='2'/>"
                                                    "</source></hostdev>"), ACCEPT),
    ("hostdev-usb-startup-on-source", "domain", dom(
        "", devices="<hostdev mode='subsystem' type='usb' startupPolicy='optional'><source>"
                    "<address bus='1' device='2'/></source></hostdev>"), REFUSE),
    ("parallel-target-type-and-model", "domain", dom(devices="<parallel type='pty'><target type='isa-serial'>"
                                                             "<model name='16550a'/></target></parallel>"), ACCEPT),
    ("channel-has-no-acpi", "domain", dom(devices="<channel type='pty'><target type='virtio'/><acpi/>"
                                                  "</channel>"), REFUSE),
    ("smartcard-has-no-alias", "domain", dom(devices="<smartcard mode='host'><alias name='ua-sc'/></smartcard>"),
     REFUSE),
    ("tpm-passthrough-version", "domain", dom(devices="<tpm><backend type='passthrough' version='2.0'/></tpm>"),
     ACCEPT),
    ("tpm-emulator-source-is-later", "domain", dom(
        "", devices="<tpm><backend type='emulator'><source type='dir' path='/t'/></backend></tpm>"), REFUSE),
    ("filesystem-ram-units", "domain", dom(devices="<filesystem type='ram'><source usage='1024' units='KiB'/>"
                                                   "<target dir='/mnt'/></filesystem>"), ACCEPT),
    ("filesystem-needs-source", "domain", dom(devices="<filesystem><target dir='/mnt'/></filesystem>"), REFUSE),
    ("filesystem-sandbox-mode-optional", "domain", dom(
        "", devices="<filesystem><driver type='virtiofs'/><binary><sandbox/></binary><source dir='/s'/>"
                    "<target dir='t'/></filesystem>"), ACCEPT),
    ("watchdog-only-one", "domain", dom(devices="<watchdog model='ib700'/><watchdog model='ib700'/>"), REFUSE),
    ("watchdog-itco-is-later", "domain", dom(devices="<watchdog model='itco'/>"), REFUSE),
    ("panic-pvpanic-is-later", "domain", dom(devices="<panic model='pvpanic'/>"), REFUSE),
    ("crypto-is-later", "domain", dom(devices="<crypto model='virtio' type='qemu'><backend model='builtin'/>"
                                              "</crypto>"), REFUSE),
    ("memory-device-needs-size", "domain", dom(devices="<memory model='dimm'><target><node>0</node></target>"
                                                       "</memory>"), REFUSE),
    ("rng-random-default-device", "domain", dom(devices="<rng model='virtio'><backend model='random'/></rng>"),
     ACCEPT),
    ("shmem-empty-name", "domain", dom(devices="<shmem name=''/>"), ACCEPT),
    ("balloon-period-zero", "domain", dom(devices="<memballoon model='virtio'><stats period='0'/>"
                                                  "</memballoon>"), REFUSE),
    ("video-heads-zero", "domain", dom(devices="<video><model type='vga' heads='0'/></video>"), ACCEPT),
    ("video-parallels-is-not-9.0", "domain", dom(devices="<video><model type='parallels'/></video>"), REFUSE),
    ("vnc-listen-host-name", "domain", dom(devices="<graphics type='vnc' listen='localhost'/>"), ACCEPT),
    ("vnc-socket-and-port", "domain", dom(devices="<graphics type='vnc' socket='/s' port='5900'/>"), REFUSE),
    ("graphics-valid-to-with-zone", "domain", dom(devices="<graphics type='spice' passwd='x' "
                                                          "passwdValidTo='2011-05-31T16:11:22Z'/>"), ACCEPT),
    ("audio-id-zero", "domain", dom(devices="<audio id='0' type='none'/>"), ACCEPT),
    ("audio-none-has-no-path", "domain", dom(devices="<audio id='1' type='none' path='/a'/>"), REFUSE),
    ("redirfilter-class-and-version", "domain", dom(
        "", devices="<redirfilter><usbdev class='0x08' version='2.0' allow='yes'/></redirfilter>"), ACCEPT),
    ("address-virtio-s390-is-gone", "domain", dom(devices=FILE_DISK.format("<address type='virtio-s390'/>")),
     REFUSE),
    ("address-drive-two-digits", "domain", dom(devices=FILE_DISK.format(
        "<address type='drive' controller='100'/>")), REFUSE),
    ("controller-pci-needs-model", "domain", dom(devices="<controller type='pci' index='0'/>"), REFUSE),
    ("controller-needs-type", "domain", dom(devices="<controller index='0'/>"), REFUSE),

    # --- snapshots -------------------------------------------------------------
    ("snap-creation-time-free", "domainsnapshot", snap("<creationTime>yesterday</creationTime>"), ACCEPT),
    ("snap-state-nostate", "domainsnapshot", snap("<state>nostate</state>"), REFUSE),
    ("snap-memory-manual", "domainsnapshot", snap("<memory snapshot='manual'/>"), REFUSE),
    ("snap-memory-external-needs-file", "domainsnapshot", snap("<memory snapshot='external'/>"), REFUSE),
    ("snap-disk-no-takes-nothing", "domainsnapshot", snap(
        "<disks><disk name='vda' snapshot='no'><source file='/s'/></disk></disks>"), REFUSE),
    ("snap-disk-name", "domainsnapshot", snap("<disks><disk name='disk0' snapshot='no'/></disks>"), REFUSE),
    ("snap-disk-driver-backing-format", "domainsnapshot", snap(
        "<disks><disk name='vda'><driver type='raw'/></disk></disks>"), REFUSE),
    ("snap-metadata-is-later", "domainsnapshot", snap("<metadata/>"), REFUSE),
    ("snap-parent-name-free", "domainsnapshot", snap("<parent><name>a/b</name></parent>"), ACCEPT),
]

# Where virtctl differs on purpose (README, "Where virtctl differs from virsh on
# purpose"): (id, kind, document, libvirt accepts it, virtctl accepts it)
DELIBERATE = [
    # extensions of hypervisors virtctl does not drive: libvirt's drivers drop them
    ("ns-bhyve-commandline", "domain", dom(
        "<bhyve:commandline xmlns:bhyve='http://libvirt.org/schemas/domain/bhyve/1.0'>"
        "<bhyve:arg value='-x'/></bhyve:commandline>"), True, False),
    ("ns-lxc-namespace", "domain", dom(
        "<lxc:namespace xmlns:lxc='http://libvirt.org/schemas/domain/lxc/1.0'>"
        "<lxc:sharenet type='netns' value='red'/></lxc:namespace>"), True, False),
    ("ns-xen-commandline", "domain", dom(
        "<xen:commandline xmlns:xen='http://libvirt.org/schemas/domain/xen/1.0'/>"), True, False),
    ("ns-vmware-datacenterpath", "domain", dom(
        "<vmware:datacenterpath xmlns:vmware='http://libvirt.org/schemas/domain/vmware/1.0'>dc1"
        "</vmware:datacenterpath>"), True, False),
    # a valid order that libxml2 refuses for libvirt's nested <interleave>s
    ("order-pool-uuid-after-target", "pool",
     "<pool type='dir'><name>p</name><capacity>6</capacity><target><path>/p</path></target>"
     "<uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid><allocation>1</allocation></pool>", False, True),
]

_IDS = [c[0] for c in CASES]
assert len(set(_IDS)) == len(_IDS), "case ids must be unique"


def _ours(kind: str, text: str):
    root = xmlapi.parse(text, source="case.xml")
    return V.problems(root, kind, source="case.xml", text=text)


@pytest.mark.parametrize("case_id,kind,text,accepted", CASES, ids=_IDS)
def test_virtctl_agrees_with_libvirt(case_id, kind, text, accepted):
    found = _ours(kind, text)
    if accepted:
        assert not found, f"{case_id}: libvirt accepts this, virtctl says: {found[0]}"
    else:
        assert found, f"{case_id}: libvirt refuses this, virtctl accepts it"
        with pytest.raises(XMLError) as exc:
            V.validate(xmlapi.parse(text, source="case.xml"), kind, source="case.xml", text=text)
        # refusals stay pointed: where, what, and no libxml2 jargon
        assert exc.value.code == "XML_ERROR"
        assert re.match(r"case\.xml:1:\d+: /\S*: \S", exc.value.message), exc.value.message
        assert "Relax-NG" not in exc.value.message and "RELAXNG" not in exc.value.message


@pytest.mark.parametrize("case_id,kind,text,libvirt,ours", DELIBERATE, ids=[c[0] for c in DELIBERATE])
def test_deliberate_differences(case_id, kind, text, libvirt, ours):
    found = _ours(kind, text)
    assert (not found) == ours, found
    if found:
        assert "unknown element" in found[0].message, found[0]
    if TOOL is not None:
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
            f.write(text)
            f.flush()
            r = subprocess.run([TOOL, f.name, LV_KIND[kind]], capture_output=True, timeout=60)
        if b"xmllint" not in r.stderr:
            assert (r.returncode == 0) == libvirt, r.stderr


def test_libvirt_validator_agrees(tmp_path):
    """Each case says what libvirt's own validator says (where it runs)."""
    if TOOL is None:
        pytest.skip("virt-xml-validate is not installed")
    probe = tmp_path / "probe.xml"
    probe.write_text(net(""))
    if subprocess.run([TOOL, str(probe), "network"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("virt-xml-validate does not run here (needs xmllint)")

    def run(case):
        case_id, kind, text, accepted = case
        f = tmp_path / f"{case_id}.xml"
        f.write_text(text)
        r = subprocess.run([TOOL, str(f), LV_KIND[kind]], capture_output=True, timeout=60)
        return case_id, accepted, r.returncode == 0

    with ThreadPoolExecutor(max_workers=4) as pool_:
        wrong = [f"{cid}: expected {'accept' if acc else 'refuse'}, libvirt says "
                 f"{'accept' if ok else 'refuse'}" for cid, acc, ok in pool_.map(run, CASES) if acc != ok]
    assert not wrong, "\n".join(wrong)


def test_units_follow_libvirt_case_rules():
    """The schema takes any case for a unit; the model must read them as libvirt does."""
    from virtctl.xml.units import to_kib

    assert to_kib(2048, "kb") == 2000       # powers of 1000, whatever the case of the b
    assert to_kib(1, "KIB") == 1 and to_kib(1, "mIb") == 1024
    assert to_kib(1024, "BYTES") == 1


# The stricter structure must not blur the messages: each names the culprit.
POINTED = [
    (dom(os="<os><type>exe</type><init>/sbin/init</init><kernel>/k</kernel></os>"),
     "/domain/os/kernel: unexpected element <kernel>"),
    (dom(os="<os><type>hvm</type><init>/sbin/init</init></os>"), "/domain/os/init: unexpected element <init>"),
    (dom(os="<os><type>hvm</type><root>dev/sda1</root></os>"),
     "/domain/os/root: invalid value 'dev/sda1' (expected an absolute path)"),
    (dom(os="<os><type>bogus</type></os>"), "/domain/os/type: invalid value 'bogus'"),
    (dom(devices="<disk type='file' device='lun'><source file='/a'/><target dev='sda'/></disk>"),
     "/domain/devices/disk: attribute 'device' has invalid value 'lun' (expected one of: disk, cdrom, floppy)"),
    (dom(devices="<interface type='network'><model type='virtio'/></interface>"),
     "/domain/devices/interface: missing required element <source>"),
    (dom(devices="<disk type='file'><source file='a.img'/><target dev='vda'/></disk>"),
     "/domain/devices/disk/source: attribute 'file' has invalid value 'a.img' (expected an absolute path"),
    (dom("<memory unit='KX'>1</memory>").replace("<memory>1024</memory>", ""),
     "/domain/memory: attribute 'unit' has invalid value 'KX' (expected a unit such as KiB"),
    (pool("<source><dir path='/x'/></source>", "netfs"), "/pool/source: missing required element <host>"),
]


@pytest.mark.parametrize("text,message", POINTED, ids=[m.split(":")[0] for _t, m in POINTED])
def test_messages_point_at_the_culprit(text, message):
    kind = V.detect_kind(xmlapi.parse(text))
    found = _ours(kind, text)
    assert found and message in str(found[0]), found
